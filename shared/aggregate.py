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

Every event declares its payload fields as class annotations, as pyeventsourcing does::

    class Opened(Aggregate.Event):            # its docstring: the contract's description
        rect_id: IdStr                            # str with the id pattern
        deadline: DateStr                         # "YYYY-MM-DD"
        responsible_role: OneOf(PERSON_ROLES)     # a Choices (or tuple of codes): enum
        title: Annotated[str, {"maxLength": 200}] # any JSON Schema keywords
        unit_id: Annotated[IdStr, "the owner unit"]  # a str: the field's description
        note: str | None = None                   # a default makes the field optional

Types: ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict`` (``list[X]``,
``dict[str, X]`` too) and ``X | None``. ``trigger`` refuses a missing or undeclared field
(``EventFieldsError``); an optional field left out is not written into the payload, and
reading it on the event gives the class default (so stored events replay unchanged).
``payload_schema(cls)`` is the JSON Schema of the payload: ``qinglian contracts
generate`` writes ``contracts/events/`` from it.
"""
from __future__ import annotations

import sys
import types as _types
import typing
from typing import Annotated, Iterable

from shared.errors import NotFound

# event type name -> event class, filled as aggregate classes are defined
EVENT_TYPES: dict[str, type["Event"]] = {}


class EventFieldsError(TypeError):
    """A payload that is not what its event class declares (a programming error)."""


# -- payload field types ------------------------------------------------------------
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
IdStr = Annotated[str, {"pattern": ID_PATTERN}]                       # an id (100 ASCII)
DateStr = Annotated[str, {"pattern": "^\\d{4}-\\d{2}-\\d{2}$"}]       # 2026-12-02
IsoDate = Annotated[str, {"format": "date"}]                          # a real ISO date
DateTimeStr = Annotated[str, {"format": "date-time"}]                 # ISO date-time
MonthStr = Annotated[str, {"pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}]  # 2026-12
NonEmptyStr = Annotated[str, {"minLength": 1}]
Count = Annotated[int, {"minimum": 0}]


def Text(max_length: int) -> object:
    """A non-empty string of at most ``max_length`` characters."""
    return Annotated[str, {"minLength": 1, "maxLength": max_length}]


def OneOf(choices) -> object:
    """An enum field: the codes of a ``Choices`` (or any tuple of str or int codes)."""
    codes = tuple(choices)
    base = int if codes and all(isinstance(c, int) and not isinstance(c, bool) for c in codes) else str
    return Annotated[base, {"enum": list(codes)}]


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean",
               list: "array", dict: "object"}


class FieldSpec:
    """One declared payload field."""

    __slots__ = ("name", "required", "nullable", "schema")

    def __init__(self, name: str, required: bool, nullable: bool, schema: dict):
        self.name, self.required, self.nullable, self.schema = name, required, nullable, schema

    def __repr__(self) -> str:
        return "<field %s%s>" % (self.name, "" if self.required else " (optional)")


def _type_schema(tp, where: str) -> tuple[dict, bool]:
    """(JSON Schema, nullable) of one annotation."""
    nullable = False
    if isinstance(tp, _Nullable):
        schema, _ = _type_schema(tp.tp, where)
        return _nullable(schema), True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, _types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(args) == len(typing.get_args(tp)):
            raise EventFieldsError("%s: only `X | None` unions are allowed" % where)
        nullable, tp = True, args[0]
        origin = typing.get_origin(tp)
    extra: dict = {}
    if origin is Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, dict):
                extra.update(meta)
            elif isinstance(meta, str):
                extra["description"] = meta
            elif isinstance(meta, (tuple, list)):
                extra["enum"] = list(meta)
            else:
                raise EventFieldsError("%s: Annotated metadata must be a dict of JSON Schema "
                                       "keywords or a tuple of codes, not %r" % (where, meta))
        tp = tp.__origin__
        origin = typing.get_origin(tp)
    schema: dict = {}
    if origin in (list, dict):
        args = typing.get_args(tp)
        if origin is list and args:
            schema = {"type": "array", "items": _type_schema(args[0], where + "[]")[0]}
        elif origin is dict and len(args) == 2:
            schema = {"type": "object", "additionalProperties": _type_schema(args[1], where + "{}")[0]}
        else:
            schema = {"type": _JSON_TYPES[origin]}
    elif tp in _JSON_TYPES:
        schema = {"type": _JSON_TYPES[tp]}
    else:
        raise EventFieldsError("%s: type %r is not one of str, int, float, bool, list, dict"
                               % (where, tp))
    schema.update(extra)
    return (_nullable(schema) if nullable else schema), nullable


def _nullable(schema: dict) -> dict:
    schema = dict(schema)
    if not isinstance(schema["type"], list):
        schema["type"] = [schema["type"], "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = schema["enum"] + [None]
    if "const" in schema:
        schema["enum"] = [schema.pop("const"), None]
    return schema


class _Nullable:
    """``X | None`` read from a string annotation (typing's Union would hash X's metadata)."""

    def __init__(self, tp):
        self.tp = tp


def _evaluate(owner, annotation, where: str):
    """An annotation as an object; strings (``from __future__ import annotations``) are
    evaluated in the defining module, a trailing ``| None`` read by hand."""
    if not isinstance(annotation, str):
        return annotation
    text = annotation.strip()
    nullable = False
    if text.endswith("| None"):
        nullable, text = True, text[: -len("| None")].strip()
    elif text.startswith("None |"):
        nullable, text = True, text[len("None |"):].strip()
    module = sys.modules.get(owner.__module__)
    try:
        value = eval(text, dict(vars(module)) if module else {}, {})  # noqa: S307 - our source
    except Exception as exc:  # a name the module does not define
        raise EventFieldsError("%s: cannot read the declaration %r: %s" % (where, annotation, exc)) from exc
    return _Nullable(value) if nullable else value


def declared_fields(cls) -> dict[str, FieldSpec]:
    """The payload fields an event class declares (its annotations and those of its
    event bases), in declaration order; computed once per class."""
    cached = cls.__dict__.get("_declared")
    if cached is not None:
        return cached
    bases = [k for k in reversed(cls.__mro__) if isinstance(k, type) and issubclass(k, Event)
             and k is not Event]
    names: list[str] = []
    for k in bases:
        for n in k.__dict__.get("__annotations__", {}):
            if n not in names:
                names.append(n)
    out = {}
    for n in names:
        where = "%s.%s" % (cls.event_type or cls.__qualname__, n)
        owner = next(k for k in reversed(bases) if n in k.__dict__.get("__annotations__", {}))
        schema, nullable = _type_schema(_evaluate(owner, owner.__annotations__[n], where), where)
        has_default = any(n in k.__dict__ for k in bases)
        out[n] = FieldSpec(n, not has_default, nullable, schema)
    cls._declared = out
    _KEYS[cls] = (frozenset(n for n, f in out.items() if f.required), frozenset(out))
    return out


# event class -> (required field names, declared field names): what ``trigger`` checks
_KEYS: dict[type, tuple[frozenset, frozenset]] = {}


def check_payload(cls, data: dict) -> None:
    """Raise ``EventFieldsError`` unless ``data`` holds every required declared field of
    ``cls`` and no other (a few hundred nanoseconds: it runs on every ``trigger``)."""
    spec = _KEYS.get(cls)
    if spec is None:
        declared_fields(cls)
        spec = _KEYS[cls]
    required, allowed = spec
    keys = data.keys()
    if keys == allowed or (required <= keys and keys <= allowed):
        return
    missing = sorted(required - keys)
    unknown = sorted(set(keys) - allowed)
    name = cls.event_type or cls.__qualname__
    if not allowed:
        raise EventFieldsError("%s declares no payload fields: declare them as class "
                               "annotations (see shared/aggregate.py), got %s" % (name, sorted(keys)))
    raise EventFieldsError("%s: %s%s%s" % (
        name, "missing field(s) %s" % ", ".join(missing) if missing else "",
        "; " if missing and unknown else "",
        "undeclared field(s) %s" % ", ".join(unknown) if unknown else ""))


def payload_schema(cls) -> dict:
    """The JSON Schema (draft 2020-12) of the payload ``cls`` declares."""
    fields = declared_fields(cls)
    name = "%s.v%d.schema.json" % (cls.event_type, cls.schema_version)
    doc = (cls.__doc__ or "").strip()
    description = " ".join(doc.split("\n\n")[0].split()) if doc else cls.event_type
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://qinglian.example/contracts/events/%s" % name,
        "title": cls.event_type,
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": [n for n, f in fields.items() if f.required],
        "properties": {n: f.schema for n, f in fields.items()},
    }


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
        check_payload(event_cls, data)
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
    def resume(cls, id: str, version: int, state: dict | None = None) -> "Aggregate":
        """The aggregate as it stands at ``version`` of its stream, with no pending events,
        without replaying it: from a snapshot's ``state`` (its public attributes), or bare
        when the caller needs only the version to append after (a mirror of another
        service's stream, which keeps the source's version numbers)."""
        agg = cls.__new__(cls)
        if state:
            agg.__dict__.update(state)
        agg.id, agg.version, agg._pending = id, version, []
        return agg

    @classmethod
    def from_snapshot(cls, state: dict) -> "Aggregate":
        return cls.resume(state["id"], state["version"], state)

    # -- replay ----------------------------------------------------------------------
    @classmethod
    def replay(cls, id: str, rows: Iterable[tuple[str, int, dict]], start: "Aggregate | None" = None):
        """Rebuild from ``(event_type, version, payload)`` rows (already upcast)."""
        agg = start if start is not None else cls.resume(id, 0)
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
