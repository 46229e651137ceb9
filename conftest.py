"""Root of the test suite (tests/ and services/*/tests/).

eventlet must patch the standard library before anything else imports it: nameko's
runner does the same under ``nameko run``, and psycopg2 only cooperates with the
eventlet hub once patched (without it container tests hang, see STACK-NOTES).
"""
import eventlet

eventlet.monkey_patch()

# docker_env overrides pytest-docker's fixtures (real containers where a Docker engine
# exists, the already-running services where none does); it must load after them.
pytest_plugins = ["tests.fixtures", "tests.docker_env"]
