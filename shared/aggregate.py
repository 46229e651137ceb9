"""Aggregates in the pyeventsourcing style: commands record nested past-tense events.

    class Unit(Aggregate):
        class Registered(Aggregate.Event):
            def apply(self, unit):
                unit.name = self.name

        @classmethod
        def register(cls, unit_id, name):
            unit = cls(unit_id)
            unit.trigger(cls.Registered, name=name)
            return unit

A command method checks invariants (raising ``shared.errors`` types) and then
``trigger``s an event; the event's ``apply`` is the only place state changes, so
state rebuilt from the log is the state the command saw. Pure Python: no I/O here.

Event type names are ``"<stream type>.<Event>"`` (``"Unit.Registered"``): that is
also the routing key on the wire and the file name of the event's JSON Schema.
"""
from __future__ import annotations

from typing import Iterable

from shared.errors import NotFound

# event type name -> event class, filled as aggregate classes are defined
EVENT_TYPES: dict[str, type["Event"]] = {}


class Event:
    """Base of every domain event: its attributes are its payload."""

    schema_version = 1
    event_type = ""  # set when the owning aggregate class is defined
    # Fields the contracts must never see leave the node (people, evidence...). The
    # exchange service's capture test reads this; domain code marks events with it.
    private = False

    def __init__(self, **data):
        self.__dict__.update(data)

    def apply(self, aggregate) -> None:  # pragma: no cover - overridden
        pass

    def data(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return "<%s %r>" % (self.event_type, self.__dict__)


class Aggregate:
    """Base class: identity, version, pending events, replay and snapshots."""

    Event = Event
    stream_type: str = ""
    # Take a snapshot every N events (None: never). Long streams only.
    snapshot_every: int | None = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if not cls.__dict__.get("stream_type"):
            cls.stream_type = cls.__name__
        for attr, value in list(vars(cls).items()):
            if isinstance(value, type) and issubclass(value, Event) and value is not Event:
                name = "%s.%s" % (cls.stream_type, attr)
                existing = EVENT_TYPES.get(name)
                if existing is not None and existing.__qualname__ != value.__qualname__:
                    raise TypeError("event type %s defined twice" % name)
                value.event_type = name
                value.aggregate_cls = cls
                EVENT_TYPES[name] = value

    def __init__(self, id: str):
        self.id = id
        self.version = 0
        self._pending: list[Event] = []

    # -- recording ---------------------------------------------------------------
    def trigger(self, event_cls: type[Event], **data) -> Event:
        event = event_cls(**data)
        event.apply(self)
        self.version += 1
        self._pending.append(event)
        return event

    def collect_events(self) -> list[Event]:
        pending, self._pending = self._pending, []
        return pending

    @property
    def pending_events(self) -> list[Event]:
        return list(self._pending)

    # -- identity in the log --------------------------------------------------------
    @classmethod
    def stream_id_for(cls, id: str) -> str:
        return "%s:%s" % (cls.stream_type, id)

    @property
    def stream_id(self) -> str:
        return self.stream_id_for(self.id)

    # -- snapshots --------------------------------------------------------------------
    def snapshot_state(self) -> dict:
        """Public attributes; aggregates keep JSON-able state (dicts, lists, strings)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @classmethod
    def from_snapshot(cls, state: dict) -> "Aggregate":
        agg = cls.__new__(cls)
        agg.__dict__.update(state)
        agg._pending = []
        return agg

    # -- replay ----------------------------------------------------------------------
    @classmethod
    def replay(cls, id: str, rows: Iterable[tuple[str, int, dict]], start: "Aggregate | None" = None):
        """Rebuild from ``(event_type, version, payload)`` rows (already upcast)."""
        agg = start
        if agg is None:
            agg = cls.__new__(cls)
            agg.id = id
            agg.version = 0
            agg._pending = []
        types = EVENT_TYPES
        new = object.__new__
        for event_type, version, payload in rows:
            event = new(types[event_type])
            event.__dict__ = payload
            event.apply(agg)
            agg.version = version
        if agg.version == 0:
            raise NotFound("记录 %s %s 不存在" % (cls.stream_type, id))
        return agg
