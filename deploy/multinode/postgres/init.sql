-- One PostgreSQL per node (this file runs on each, on an empty data directory):
-- a database per service and one for the node (users, tokens, trusted peers).
CREATE DATABASE units;
CREATE DATABASE supervision;
CREATE DATABASE education;
CREATE DATABASE exchange;
CREATE DATABASE node;
