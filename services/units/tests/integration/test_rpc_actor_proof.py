"""Over the node's real broker, an RPC actor is a credential: whoever can reach the
broker cannot name themselves an admin (issue 11, C11)."""
import pytest

from shared import config
from shared.auth import UserDirectory
from shared.db import make_engine
from shared.errors import Forbidden, Unauthenticated

UNIT = {"unit_id": "qu", "name": "区", "kind": "district_authority", "level": "district"}


def test_a_dict_of_roles_is_refused_typed_and_writes_nothing(units_node):
    forged = {"user_id": "nobody", "roles": ["node-admin"], "node": "district-test"}
    with units_node.rpc() as n:
        for call in (lambda: n.units.register_unit(UNIT, actor=forged),
                     lambda: n.units.execute("register_unit", UNIT, forged),
                     lambda: n.units.query("list_units", {}, {"user_id": "x", "roles": ["viewer"]}),
                     lambda: n.units.register_unit(UNIT, actor={"token": "ql_guessed"})):
            with pytest.raises(Unauthenticated) as err:
                call()
            assert err.value.code == "unauthenticated"
        assert units_node.head() == 0
        # the positive signal after the refusals: the same call with proof goes through
        assert n.units.register_unit(UNIT, actor=units_node.admin)["unit_id"] == "qu"
    assert units_node.head() == 1


def test_session_tokens_work_and_revokes_bite_at_once_over_rpc(units_node, make_user):
    """The console's session token is accepted like an API token; a revoke, a disable or
    an ended session made by another process of the node is refused on the very next call
    (no 5 s token cache in between)."""
    viewer = make_user("v", ["viewer"])
    users = UserDirectory(make_engine(config.node_database_url(units_node.config)), "district-test")
    session = users.open_session("v", 600, 3600)
    with units_node.rpc() as n:
        n.units.register_unit(UNIT, actor=units_node.admin)
        for proof in (viewer, session):  # both read, neither writes
            assert n.units.get_unit({"unit_id": "qu"}, actor={"token": proof})["unit_id"] == "qu"
            with pytest.raises(Forbidden):
                n.units.rename_unit({"unit_id": "qu", "name": "x"}, actor={"token": proof})
        users.revoke_tokens("v")
        with pytest.raises(Unauthenticated):
            n.units.get_unit({"unit_id": "qu"}, actor={"token": viewer})
        assert n.units.get_unit({"unit_id": "qu"}, actor={"token": session})["unit_id"] == "qu"
        users.end_session(session)
        with pytest.raises(Unauthenticated):
            n.units.get_unit({"unit_id": "qu"}, actor={"token": session})
        admin_session = users.open_session("admin", 600, 3600)
        assert n.units.get_unit({"unit_id": "qu"}, actor={"token": admin_session})["unit_id"] == "qu"
        users.set_disabled("admin")
        for proof in (admin_session, units_node.admin["token"]):
            with pytest.raises(Unauthenticated):
                n.units.get_unit({"unit_id": "qu"}, actor={"token": proof})
    # HTTP shares the directory: the disabled admin's bearer token is refused there too
    assert units_node.api.get("get_unit", {"unit_id": "qu"})[0] == 401
    users.engine.dispose()
