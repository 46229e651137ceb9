"""pytest plugin: the RabbitMQ and PostgreSQL the tests talk to.

Where a Docker engine answers (``docker info`` and ``docker compose version`` both
succeed), pytest-docker brings ``rabbitmq`` and ``postgres`` up from the repo's
docker-compose.yml. Otherwise (this kind of machine: docker client, no engine) a
stand-in points at the services already running on 127.0.0.1, with the same
``port_for``/``wait_until_responsive`` surface, so tests don't care which they got.

Registered from the root conftest.py: ``pytest_plugins = [..., "tests.docker_env"]``.

Every pytest-docker fixture that ``docker_services`` needs is defined here too, so this
works whether or not pytest-docker's plugin is active; a conftest can still override
any of them. Scopes follow pytest-docker's ``--container-scope`` (default: session).

Note: nameko's pytest plugin also has an ``amqp_uri`` fixture (the per-test vhost of
``rabbit_config``); the one here, registered later, takes its place.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import timeit
from pathlib import Path
from typing import Any, Callable

import pytest
from pytest_docker.plugin import containers_scope, get_docker_ip, get_docker_services

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

RABBITMQ, AMQP_PORT, RABBIT_API_PORT = "rabbitmq", 5672, 15672
POSTGRES, POSTGRES_PORT = "postgres", 5432

# Host ports of the services already running on this machine (their standard ports,
# the same ones docker-compose.yml publishes).
LOCAL_PORTS = {
    (RABBITMQ, AMQP_PORT): 5672,
    (RABBITMQ, RABBIT_API_PORT): 15672,
    (POSTGRES, POSTGRES_PORT): 5432,
}

DOCKER_WAIT = 180.0  # first run pulls images
LOCAL_WAIT = 30.0  # already running, or about to be (.ci/run starts them)


def docker_available() -> bool:
    """True when a Docker engine and the compose plugin both answer."""
    if shutil.which("docker") is None:
        return False
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            return False
    return True


class LocalServices:
    """Stand-in for ``pytest_docker.Services``: services already running locally."""

    host = "127.0.0.1"

    def __init__(self, ports: dict[tuple[str, int], int] | None = None) -> None:
        self._ports = dict(LOCAL_PORTS if ports is None else ports)

    def port_for(self, service: str, container_port: int) -> int:
        try:
            return self._ports[(service, container_port)]
        except KeyError:
            known = ", ".join("%s:%d" % key for key in sorted(self._ports))
            raise ValueError(
                'Could not detect port for "%s:%d": no Docker engine here, and only %s '
                "run locally." % (service, container_port, known)
            ) from None

    def wait_until_responsive(
        self,
        check: Callable[[], Any],
        timeout: float,
        pause: float,
        clock: Callable[[], float] = timeit.default_timer,
    ) -> None:
        ref = clock()
        while clock() - ref < timeout:
            if check():
                return
            time.sleep(pause)
        raise Exception("Timeout reached while waiting on service!")


def services_host(services: Any) -> str:
    """Where the tests reach the services: 127.0.0.1 locally, the Docker host else."""
    return getattr(services, "host", None) or get_docker_ip()


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _rabbitmq_ready(host: str, amqp_port: int, api_port: int) -> Callable[[], bool]:
    # The management API too: nameko's rabbit_config fixture creates vhosts through it.
    def check() -> bool:
        import requests

        if not _tcp_open(host, amqp_port):
            return False
        try:
            reply = requests.get(
                "http://%s:%d/api/overview" % (host, api_port),
                auth=("guest", "guest"),
                timeout=3,
            )
        except requests.RequestException:
            return False
        return reply.status_code == 200

    return check


def _postgres_ready(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        import psycopg2

        try:
            psycopg2.connect(
                host=host, port=port, user="postgres", dbname="postgres", connect_timeout=3
            ).close()
        except psycopg2.Error:
            return False
        return True

    return check


def wait_for_infrastructure(services: Any, timeout: float) -> None:
    host = services_host(services)
    amqp_port = services.port_for(RABBITMQ, AMQP_PORT)
    api_port = services.port_for(RABBITMQ, RABBIT_API_PORT)
    pg_port = services.port_for(POSTGRES, POSTGRES_PORT)
    waits = [
        (
            "RabbitMQ (AMQP %s:%d, management API :%d)" % (host, amqp_port, api_port),
            _rabbitmq_ready(host, amqp_port, api_port),
        ),
        ("PostgreSQL (%s:%d, user postgres)" % (host, pg_port), _postgres_ready(host, pg_port)),
    ]
    for what, check in waits:
        try:
            services.wait_until_responsive(check=check, timeout=timeout, pause=0.5)
        except Exception as exc:  # pytest-docker raises a bare Exception
            hint = (
                " No Docker engine here: start the local services (.ci/run does)."
                if isinstance(services, LocalServices)
                else ""
            )
            raise RuntimeError(
                "%s did not answer within %.0f s.%s" % (what, timeout, hint)
            ) from exc


# pytest-docker's fixtures, same names and scopes, set for this repo.


@pytest.fixture(scope=containers_scope)
def docker_compose_command() -> str:
    return "docker compose"


@pytest.fixture(scope=containers_scope)
def docker_compose_file() -> str:
    # pytest-docker's default is tests/docker-compose.yml; ours is the deployment file.
    return str(COMPOSE_FILE)


@pytest.fixture(scope=containers_scope)
def docker_compose_project_name() -> str:
    return "qinglian-test-%d" % os.getpid()


@pytest.fixture(scope=containers_scope)
def docker_setup() -> list[str]:
    # Only the infrastructure: the service containers would consume the tests' events.
    return ["up --wait %s %s" % (RABBITMQ, POSTGRES)]


@pytest.fixture(scope=containers_scope)
def docker_cleanup() -> list[str]:
    return ["down -v"]


@pytest.fixture(scope=containers_scope)
def docker_services(
    docker_compose_command: str,
    docker_compose_file: str,
    docker_compose_project_name: str,
    docker_setup: list[str],
    docker_cleanup: list[str],
):
    """RabbitMQ and PostgreSQL, ready: from docker compose, or the local ones."""
    if docker_available():
        with get_docker_services(
            docker_compose_command,
            docker_compose_file,
            docker_compose_project_name,
            docker_setup,
            docker_cleanup,
        ) as services:
            wait_for_infrastructure(services, DOCKER_WAIT)
            yield services
    else:
        services = LocalServices()
        wait_for_infrastructure(services, LOCAL_WAIT)
        yield services


@pytest.fixture(scope=containers_scope)
def amqp_uri(docker_services) -> str:
    """The broker's default vhost, e.g. amqp://guest:guest@127.0.0.1:5672/."""
    return "amqp://guest:guest@%s:%d/" % (
        services_host(docker_services),
        docker_services.port_for(RABBITMQ, AMQP_PORT),
    )


@pytest.fixture(scope=containers_scope)
def postgres_dsn(docker_services) -> str:
    """The server's maintenance database (trust auth, user postgres)."""
    return "postgresql+psycopg2://postgres@%s:%d/postgres" % (
        services_host(docker_services),
        docker_services.port_for(POSTGRES, POSTGRES_PORT),
    )
