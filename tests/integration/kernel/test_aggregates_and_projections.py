"""Aggregates, repository, snapshots, upcasting, inline projections, rebuild and as-of."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, inspect, select, text

from shared.aggregate import Aggregate
from shared.errors import ConcurrencyError, NotFound, RuleViolation
from shared.events import upcasters
from shared.projections import Projection, build_as_of, on, prepare, rebuild
from shared.uow import Runtime


class Account(Aggregate):
    snapshot_every = 5

    class Opened(Aggregate.Event):
        account_id: str
        owner: str

        def apply(self, a):
            a.owner, a.balance = self.owner, 0

    class Deposited(Aggregate.Event):
        schema_version = 2  # v1 had "amount_fen"; v2 has "amount" in yuan
        account_id: str
        amount: float

        def apply(self, a):
            a.balance += self.amount

    @classmethod
    def open(cls, id, owner):
        a = cls(id)
        a.trigger(cls.Opened, account_id=id, owner=owner)
        return a

    def deposit(self, amount):
        if amount <= 0:
            raise RuleViolation("deposit must be positive")
        self.trigger(self.Deposited, account_id=self.id, amount=amount)


@upcasters.register("Account.Deposited", 1)
def _fen_to_yuan(p):
    return {"account_id": p["account_id"], "amount": p.pop("amount_fen") / 100}


md = MetaData()
balances = Table("test_balances", md, Column("account_id", String(50), primary_key=True),
                 Column("owner", String(50)), Column("balance", Integer), Column("deposits", Integer))


class Balances(Projection):
    name = "balances"
    tables = (balances,)

    @on("Account.Opened")
    def opened(self, w, e):
        w.insert(balances, account_id=e.payload["account_id"], owner=e.payload["owner"],
                 balance=0, deposits=0)

    @on("Account.Deposited")
    def deposited(self, w, e):
        row = w.get(balances, account_id=e.payload["account_id"])
        w.update(balances, {"account_id": row["account_id"]},
                 balance=row["balance"] + e.payload["amount"], deposits=row["deposits"] + 1)


@pytest.fixture
def rt(db_url, engine_for):
    r = Runtime(engine_for(db_url), [Balances()], node_id="n1", service="test")
    r.create_schema()
    return r


def rows(rt):
    with rt.read() as c:
        return [dict(r) for r in c.execute(select(balances).order_by(balances.c.account_id)).mappings()]


def test_commands_record_events_and_reload_rebuilds_state(rt):
    with rt.unit_of_work() as uow:
        a = Account.open("a1", "区纪委")
        a.deposit(10)
        uow.save(a)
    with rt.unit_of_work() as uow:
        a = uow.get(Account, "a1")
        assert (a.owner, a.balance, a.version) == ("区纪委", 10, 2)
        with pytest.raises(NotFound):
            uow.get(Account, "nope")


def test_a_failed_command_writes_nothing(rt):
    with rt.unit_of_work() as uow:
        uow.save(Account.open("a1", "x"))
    with pytest.raises(RuleViolation):
        with rt.unit_of_work() as uow:
            a = uow.get(Account, "a1")
            a.deposit(5)
            uow.save(a)
            a.deposit(-1)  # fails after a save: the whole unit of work rolls back
    with rt.read() as c:
        assert rt.store.head(c) == 1
    assert rows(rt)[0]["balance"] == 0


def test_lost_update_is_a_concurrency_error(rt):
    with rt.unit_of_work() as uow:
        uow.save(Account.open("a1", "x"))
    with rt.unit_of_work() as u1:
        first = u1.get(Account, "a1")
    with rt.unit_of_work() as u2:
        second = u2.get(Account, "a1")
        second.deposit(1)
        u2.save(second)
    with pytest.raises(ConcurrencyError):
        with rt.unit_of_work() as u1:
            first.deposit(2)
            u1.save(first)
    assert rows(rt)[0]["balance"] == 1


def test_snapshots_are_taken_and_used(rt):
    with rt.unit_of_work() as uow:
        a = Account.open("a1", "x")
        for _ in range(11):
            a.deposit(1)
        uow.save(a)
    with rt.read() as c:
        snap = c.execute(text("SELECT version, state FROM snapshots")).one()
    assert snap.version == 12 and json.loads(snap.state)["balance"] == 11
    # prove the snapshot is used: rewrite it and see the loaded state follow
    with rt.engine.begin() as c:
        c.execute(text("UPDATE snapshots SET state = :s"),
                  {"s": json.dumps({"id": "a1", "version": 12, "owner": "x", "balance": 1000})})
    with rt.unit_of_work() as uow:
        a = uow.get(Account, "a1")
        assert a.balance == 1000 and a.version == 12


def test_an_aggregate_resumed_at_a_version_appends_after_it(rt):
    """``Aggregate.resume``: taken up at version 2 of its stream without replaying it (as a
    mirror of another service's stream does), it appends version 3 and has nothing pending."""
    with rt.unit_of_work() as uow:
        a = Account.open("a1", "x")
        a.deposit(1)
        uow.save(a)
    resumed = Account.resume("a1", 2, {"owner": "x", "balance": 1})
    assert (resumed.id, resumed.version, resumed.pending_events) == ("a1", 2, [])
    resumed.deposit(4)
    with rt.unit_of_work() as uow:
        uow.save(resumed)
    with rt.unit_of_work() as uow:
        again = uow.get(Account, "a1")
    assert (again.version, again.balance) == (3, 5)
    with pytest.raises(ConcurrencyError):  # a wrong version is caught by the log as before
        with rt.unit_of_work() as uow:
            stale = Account.resume("a1", 1, {"owner": "x", "balance": 0})
            stale.trigger(Account.Deposited, account_id="a1", amount=1)
            uow.save(stale)


def test_the_unit_tree_read_model_imports_no_nameko_and_no_layer_above():
    """The nameko mixin that feeds the mirror lives in shared.service, not in the read model."""
    import subprocess
    import sys
    code = ("import sys, shared.unittree; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nameko', 'services') "
            "or m == 'shared.service'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_old_event_versions_are_upcast_on_read(rt):
    from shared.events import NewEvent
    with rt.engine.begin() as c:  # a v1 event as an older release stored it
        rt.store.append(c, [NewEvent("Account:old", "Account", 1, "Account.Opened", 1,
                                     {"account_id": "old", "owner": "y"}),
                            NewEvent("Account:old", "Account", 2, "Account.Deposited", 1,
                                     {"account_id": "old", "amount_fen": 250})])
    with rt.unit_of_work() as uow:
        assert uow.get(Account, "old").balance == 2.5
    with rt.read() as c:  # stored payloads are never edited
        assert json.loads(c.execute(text("SELECT payload FROM events WHERE position = 2")).scalar()) == \
            {"account_id": "old", "amount_fen": 250}


def test_projection_is_updated_in_the_same_transaction(rt):
    with rt.unit_of_work() as uow:
        a = Account.open("a1", "x")
        a.deposit(3)
        uow.save(a)
        # visible inside the unit of work already
        assert uow.conn.execute(select(balances.c.balance)).scalar() == 3
    assert rows(rt) == [{"account_id": "a1", "owner": "x", "balance": 3, "deposits": 1}]


def test_rebuild_equals_live_and_catch_up_fills_a_gap(rt):
    for i in range(20):
        with rt.unit_of_work() as uow:
            a = Account.open("a%02d" % i, "o%d\t\\N\n清" % i if i % 2 else None)
            for k in range(i % 4):
                a.deposit(k + 1)
            uow.save(a)
    live = rows(rt)
    with rt.engine.begin() as c:  # wreck the read model
        c.execute(balances.delete())
    with rt.read() as c:
        head = rt.store.head(c)
    assert rebuild(rt.store, Balances()) == head
    assert rows(rt) == live
    # projections behind the shared checkpoint catch up on start-up
    with rt.engine.begin() as c:
        c.execute(balances.delete())
        rt.store.set_checkpoint(c, rt.inline_checkpoint, 0)
    prepare(rt.store, rt.projections, rt.inline_checkpoint)
    assert rows(rt) == live
    # a projection never built here (new, or its version bumped) is rebuilt on start-up
    with rt.engine.begin() as c:
        c.execute(balances.delete())
        c.execute(text("DELETE FROM checkpoints WHERE name = :n"), {"n": Balances().checkpoint_name})
    prepare(rt.store, rt.projections, rt.inline_checkpoint)
    assert rows(rt) == live


def test_as_of_a_position_and_a_time(rt):
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    clock = [t0]
    rt.clock = lambda: clock[0]
    with rt.unit_of_work() as uow:
        uow.save(Account.open("a1", "x"))
    captured = rows(rt)
    clock[0] = t0 + timedelta(days=10)
    with rt.unit_of_work() as uow:
        a = uow.get(Account, "a1")
        a.deposit(7)
        uow.save(a)
    for kwargs in ({"position": 1}, {"until_us": int((t0 + timedelta(days=1)).timestamp() * 1e6)}):
        engine = build_as_of(rt.store, [Balances()], **kwargs)
        with engine.connect() as c:
            assert [dict(r) for r in c.execute(select(balances)).mappings()] == captured
    assert rows(rt)[0]["balance"] == 7


def test_tracking_makes_a_consumer_idempotent(rt):
    with rt.unit_of_work() as uow:
        assert uow.track("svc.handler", "ev-1") is True
    with rt.unit_of_work() as uow:
        assert uow.track("svc.handler", "ev-1") is False
        assert uow.track("other.handler", "ev-1") is True


def test_a_runtime_keeps_only_declared_state_each_its_own(rt, db_url, engine_for):
    from shared.app import Application
    app = Application("test")

    @app.runtime_state("seen")
    def _seen():
        return {}

    app.state_of(rt, "seen")["2026-02"] = 7
    assert app.state_of(rt, "seen") == {"2026-02": 7}   # kept between calls
    other = Runtime(engine_for(db_url), [Balances()], node_id="n1", service="test")
    assert app.state_of(other, "seen") == {}             # per runtime, built by hand too
    with pytest.raises(ValueError):
        app.state_of(rt, "unseen")                        # undeclared: refused
    with pytest.raises(ValueError):
        app.runtime_state("seen")(_seen)                  # declared twice: refused
    with pytest.raises(AttributeError):
        rt.indicator_entries_seen = {}                    # nothing undeclared on the runtime


indexed_md = MetaData()
indexed = Table("test_indexed", indexed_md, Column("k", String(50), primary_key=True),
                Column("a", String(50)), Column("b", Integer),
                Index("ix_test_indexed_a_b", "a", "b"))


def test_an_index_added_to_an_existing_read_model_table_is_made_at_start_up(db_url, engine_for):
    # a node's tables outlive the code: an index declared after the table was made (as
    # the 工作台's were) must exist after the next create_schema, the rows untouched
    engine = engine_for(db_url)
    rt = Runtime(engine, [], node_id="n1", service="test", extra_metadata=[indexed_md])
    rt.create_schema()
    with engine.begin() as c:
        c.execute(text("DROP INDEX ix_test_indexed_a_b"))
        c.execute(indexed.insert().values(k="x", a="y", b=1))
    assert "ix_test_indexed_a_b" not in {i["name"] for i in inspect(engine).get_indexes("test_indexed")}
    rt.create_schema()
    assert "ix_test_indexed_a_b" in {i["name"] for i in inspect(engine).get_indexes("test_indexed")}
    with engine.connect() as c:
        assert c.execute(select(indexed.c.k, indexed.c.a, indexed.c.b)).all() == [("x", "y", 1)]
    rt.create_schema()  # and made once: a second start finds it and changes nothing
