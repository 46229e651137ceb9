"""A source log with a relay, and a real nameko consumer with an idempotent read model."""
import uuid

from nameko.events import event_handler
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from shared.app import Application
from shared.events import NewEvent
from shared.projections import Projection
from shared.service import NodeService, idempotent

SOURCE = "relaysource"
md = MetaData()
seen = Table("seen_things", md, Column("event_id", String(36), primary_key=True),
             Column("n", Integer, nullable=False))


class _Seen(Projection):
    """Only contributes the table to the consumer's schema (the handler writes it)."""
    name = "seen"
    tables = (seen,)


consumer_app = Application("relayconsumer")
consumer_app.projections = [_Seen()]


class ConsumerService(NodeService):
    name = "relayconsumer"
    app = consumer_app

    @event_handler(SOURCE, "Thing.Happened")
    @idempotent
    def on_thing(self, event, uow):
        uow.conn.execute(seen.insert().values(event_id=event.event_id, n=event.payload["n"]))


def append_things(store, start, count):
    with store.engine.begin() as c:
        store.append(c, [NewEvent("thing-%s" % uuid.uuid4().hex, "Thing", 1, "Thing.Happened", 1,
                                  {"n": start + i}) for i in range(count)])


def seen_numbers(engine):
    with engine.connect() as c:
        return sorted(r[0] for r in c.execute(select(seen.c.n)))


def seen_count(engine):
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(seen)).scalar()
