-- Runs once, on an empty data directory (postgres image: /docker-entrypoint-initdb.d).
-- One database per service, one for the node (users, tokens, peers), and `test`
-- for the test suite (which creates and drops its own per-test databases besides).
CREATE DATABASE units;
CREATE DATABASE supervision;
CREATE DATABASE education;
CREATE DATABASE exchange;
CREATE DATABASE node;
CREATE DATABASE test;
