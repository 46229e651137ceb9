"""The nameko layer, tested with nameko's own helpers (worker_factory, entrypoint_hook)."""
import json

import pytest
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook, worker_factory
from nameko.testing.utils import get_extension
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.units.domain import Unit
from services.units.service import UnitsService
from shared.errors import BadInput, Forbidden, Unauthenticated
from shared.service import EventSourcing


def request(method="POST", body=None, token="t", headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer %s" % token
    return Request(EnvironBuilder(method=method, data=body, headers=h).get_environ())


class FakeApi:
    """Stands in for the EventSourcing dependency: records what the entrypoint asked."""

    def __init__(self, raise_on_execute=None, raise_on_auth=None):
        from services.units.application import app
        self.app = app
        self.calls = []
        self._exc, self._auth_exc = raise_on_execute, raise_on_auth

    def authenticate(self, token):
        if self._auth_exc:
            raise self._auth_exc
        return "actor:%s" % token

    def execute(self, name, data, actor, expected_version=None):
        self.calls.append((name, data, actor, expected_version))
        if self._exc:
            raise self._exc
        return {"ok": True}


def test_http_command_maps_typed_errors_to_statuses():
    for exc, status in [(BadInput("bad", {"name": ["required"]}), 400), (Forbidden("no"), 403)]:
        service = worker_factory(UnitsService, store=FakeApi(raise_on_execute=exc))
        response = service.http_command(request(body=json.dumps({"unit_id": "x"})), "rename_unit")
        assert response.status_code == status
        assert json.loads(response.get_data(as_text=True))["error"] == exc.code


def test_http_command_passes_body_actor_and_if_match():
    fake = FakeApi()
    service = worker_factory(UnitsService, store=fake)
    response = service.http_command(request(body='{"unit_id": "x", "name": "y"}', token="abc",
                                            headers={"If-Match": "4"}), "rename_unit")
    assert response.status_code == 200
    assert fake.calls == [("rename_unit", {"unit_id": "x", "name": "y"}, "actor:abc", 4)]


def test_http_rejects_bad_json_bad_if_match_and_missing_token_before_executing():
    fake = FakeApi(raise_on_auth=Unauthenticated("missing bearer token"))
    service = worker_factory(UnitsService, store=fake)
    # the token is checked before the body is even parsed (shared.http)
    assert service.http_command(request(body="{", token=None), "rename_unit").status_code == 401
    assert service.http_command(request(body="{}", token=None), "rename_unit").status_code == 401
    fake2 = FakeApi()
    service2 = worker_factory(UnitsService, store=fake2)
    assert service2.http_command(request(body="{"), "rename_unit").status_code == 400
    assert service2.http_command(request(body="{}", headers={"If-Match": "v1"}), "rename_unit").status_code == 400
    assert service2.http_command(request(body="{}"), "no_such_command").status_code == 404
    assert fake.calls == [] and fake2.calls == []


class FailingUnits(UnitsService):
    """A worker that records events and then fails: its transaction must roll back."""

    @rpc
    def register_then_fail(self):
        with self.store.unit_of_work() as uow:
            uow.save(Unit.register("qu", "区", "district_authority", "district", None))
            raise RuntimeError("the worker failed after recording")


def test_a_failing_worker_leaves_nothing_behind(container_factory, node_config, make_user):
    node_config["QINGLIAN_RELAY"] = "off"
    container = container_factory(FailingUnits, node_config)
    container.start()
    with entrypoint_hook(container, "register_then_fail") as hook:
        with pytest.raises(RuntimeError):
            hook()
    with entrypoint_hook(container, "get_unit") as hook:
        from shared.errors import NotFound
        with pytest.raises(NotFound):
            hook({"unit_id": "qu"}, actor={"token": make_user("a", ["viewer"])})
    rt = get_extension(container, EventSourcing).runtime
    with rt.read() as c:
        assert rt.store.head(c) == 0


def test_rpc_refuses_an_actor_without_proof(container_factory, node_config, admin_token):
    """A dict of roles is what anyone on the broker could send: refused, typed, and
    nothing is written; the same call with the admin's token goes through."""
    node_config["QINGLIAN_RELAY"] = "off"
    container = container_factory(UnitsService, node_config)
    container.start()
    unit = {"unit_id": "qu", "name": "区", "kind": "district_authority", "level": "district"}
    forged = [{"user_id": "nobody", "roles": ["node-admin"], "node": "district-test"},
              {"user_id": "admin", "roles": ["node-admin"], "token": admin_token},  # extra keys
              {"token": "ql_forged"}, {"token": None}, {"token": ["x"]}, "admin", ["node-admin"]]
    with entrypoint_hook(container, "register_unit") as hook:
        for actor in forged:
            with pytest.raises(Unauthenticated):
                hook(unit, actor=actor)
        with pytest.raises(Unauthenticated):
            hook(unit)
    rt = get_extension(container, EventSourcing).runtime
    with rt.read() as c:
        assert rt.store.head(c) == 0
    with entrypoint_hook(container, "register_unit") as hook:
        assert hook(unit, actor={"token": admin_token})["unit_id"] == "qu"
    with rt.read() as c:
        assert rt.store.head(c) == 1


def test_tokens_are_hashed_checked_and_revocable(sqlite_url):
    from shared.auth import UserDirectory, api_tokens
    from shared.db import make_engine
    users = UserDirectory(make_engine(sqlite_url), "n")
    users.create_schema()
    users.add_user("zhang", "张三", ["unit-admin"], "xj")
    token = users.issue_token("zhang")
    with users.engine.connect() as c:
        stored = [r.token_hash for r in c.execute(api_tokens.select())]
    assert token not in stored and len(stored[0]) == 64  # only the hash is kept
    actor = users.authenticate(token)
    assert (actor.user_id, actor.roles, actor.unit_scope) == ("zhang", ("unit-admin",), "xj")
    users.revoke_token(token)
    with pytest.raises(Unauthenticated):
        users.authenticate(token)
    with pytest.raises(Unauthenticated):
        users.authenticate("ql_not-a-token")
