"""Events declare their payload fields; ``trigger`` refuses anything else; the contracts
in contracts/events/ are generated from the declarations and compared field by field."""
from __future__ import annotations

import copy
from typing import Annotated

import pytest

from shared import contracts
from shared.aggregate import (Aggregate, DateStr, EventFieldsError, IdStr, OneOf, declared_fields,
                              payload_schema)

COLOURS = ("red", "green")


class Lamp(Aggregate):
    class Installed(Aggregate.Event):
        """A lamp was put up."""
        lamp_id: IdStr
        colour: OneOf(COLOURS)
        watts: Annotated[int, {"minimum": 1}]
        brightness: float
        on: bool
        tags: list[str]
        settings: dict
        installed_on: DateStr | None
        note: str | None = None

        def apply(self, lamp):
            lamp.colour, lamp.note = self.colour, self.note

    class Unplugged(Aggregate.Event):  # declares nothing: may not be triggered
        pass

    @classmethod
    def install(cls, lamp_id, **extra):
        lamp = cls(lamp_id)
        payload = dict(lamp_id=lamp_id, colour="red", watts=5, brightness=0.5, on=True, tags=[],
                       settings={}, installed_on=None)
        payload.update(extra)
        lamp.trigger(cls.Installed, **{k: v for k, v in payload.items() if v is not ...})
        return lamp


def test_trigger_refuses_a_missing_field_and_writes_nothing():
    lamp = Lamp("l1")
    with pytest.raises(EventFieldsError, match="missing field\\(s\\) watts"):
        lamp.trigger(Lamp.Installed, lamp_id="l1", colour="red", brightness=1.0, on=True, tags=[],
                     settings={}, installed_on=None)
    assert lamp.collect_events() == [] and lamp.version == 0


def test_trigger_refuses_an_undeclared_field():
    with pytest.raises(EventFieldsError, match="undeclared field\\(s\\) colour_code"):
        Lamp.install("l1", colour_code="#f00")


def test_an_event_that_declares_nothing_cannot_be_triggered():
    lamp = Lamp.install("l1")
    with pytest.raises(EventFieldsError, match="Lamp.Unplugged declares no payload fields"):
        lamp.trigger(Lamp.Unplugged, lamp_id="l1")


def test_an_optional_field_left_out_is_not_written_and_reads_as_its_default():
    lamp = Lamp.install("l1")
    (event,) = lamp.collect_events()
    assert "note" not in event.data() and event.note is None and lamp.note is None
    replayed = Lamp.replay("l1", [("Lamp.Installed", 1, event.data())])
    assert replayed.note is None
    lamp = Lamp.install("l2", note="走廊")
    assert lamp.collect_events()[0].data()["note"] == "走廊"


def test_the_payload_schema_follows_the_declarations():
    schema = payload_schema(Lamp.Installed)
    assert schema["title"] == "Lamp.Installed" and schema["description"] == "A lamp was put up."
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["lamp_id", "colour", "watts", "brightness", "on", "tags",
                                  "settings", "installed_on"]
    p = schema["properties"]
    assert p["lamp_id"]["type"] == "string" and "pattern" in p["lamp_id"]
    assert p["colour"] == {"type": "string", "enum": ["red", "green"]}
    assert p["watts"] == {"type": "integer", "minimum": 1}
    assert p["brightness"] == {"type": "number"} and p["on"] == {"type": "boolean"}
    assert p["tags"] == {"type": "array", "items": {"type": "string"}}
    assert p["settings"] == {"type": "object"}
    assert p["installed_on"]["type"] == ["string", "null"]
    assert p["note"] == {"type": ["string", "null"]}


def test_a_type_outside_json_is_refused():
    class Odd(Aggregate):
        class Happened(Aggregate.Event):
            when: set

    with pytest.raises(EventFieldsError, match="not one of str, int, float, bool, list, dict"):
        declared_fields(Odd.Happened)


def test_every_platform_event_declares_its_fields():
    for event_type, cls in contracts.load_all_event_types().items():
        fields = declared_fields(cls)
        assert fields, "%s declares no payload fields" % event_type
        assert all(f.schema.get("type") for f in fields.values()), event_type


def test_the_envelope_knows_the_exchange_services_sharing_levels():
    """The kernel's envelope checks a record's sharing against its own copy of the codes (it
    imports no service); they are the exchange domain's, in its order, and a node's level
    is one of the units service's levels."""
    from services.exchange.domain import SHARING_LEVELS
    from services.units.domain import UNIT_LEVELS
    from shared.federation import envelope
    assert envelope.SHARING_LEVELS == tuple(SHARING_LEVELS)
    assert set(envelope.NODE_LEVELS) <= set(UNIT_LEVELS)


def test_the_unit_mirror_declares_the_units_services_codes():
    from services.units.domain import UNIT_KINDS, UNIT_LEVELS
    from shared.unittree import UnitMirror
    props = payload_schema(UnitMirror.Registered)["properties"]
    assert props["kind"]["enum"] == list(UNIT_KINDS) and props["level"]["enum"] == list(UNIT_LEVELS)
    assert props == payload_schema(__import__("services.units.domain", fromlist=["Unit"])
                                   .Unit.Registered)["properties"]


def test_drift_names_a_missing_field_a_required_change_and_a_type_change():
    from services.units.domain import Unit
    want = payload_schema(Unit.Registered)
    assert contracts.schema_differences("x", copy.deepcopy(want), want) == []
    have = copy.deepcopy(want)
    del have["properties"]["name"]
    have["required"].remove("kind")
    have["properties"]["level"]["type"] = "integer"
    have["properties"]["extra"] = {"type": "string"}
    problems = "\n".join(contracts.schema_differences("x", have, want))
    assert "field name is declared in the code but not in the contract" in problems
    assert "field extra is in the contract but the code does not declare it" in problems
    assert "field kind is required in the code but optional in the contract" in problems
    assert "field level has type string in the code but integer in the contract" in problems
    have = copy.deepcopy(want)
    have["properties"]["unit_id"]["pattern"] = "^.*$"
    assert "other constraints" in "\n".join(contracts.schema_differences("x", have, want))


def test_an_upcast_event_keeps_its_older_contract_and_gets_a_generated_new_one(tmp_path, monkeypatch):
    from services.units.domain import Unit
    stored_v1 = contracts.schema_file("Unit.Registered", 1).read_text(encoding="utf-8")
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    monkeypatch.setattr(contracts, "EVENTS_DIR", events_dir)
    monkeypatch.setattr(contracts, "ASYNCAPI", tmp_path / "asyncapi.yaml")
    monkeypatch.setattr(Unit.Registered, "schema_version", 2)
    (events_dir / "Unit.Registered.v1.schema.json").write_text(stored_v1 + " ", encoding="utf-8")
    written = {p.name for p in contracts.generate()}
    assert "Unit.Registered.v2.schema.json" in written
    assert "Unit.Registered.v1.schema.json" not in written  # the stored one is kept as it is
    assert (events_dir / "Unit.Registered.v1.schema.json").read_text(encoding="utf-8") == stored_v1 + " "
    assert contracts.drift() == []
    (events_dir / "Unit.Registered.v3.schema.json").write_text(stored_v1, encoding="utf-8")
    assert contracts.drift() == ["contract for a version the code does not have: "
                                 "Unit.Registered.v3.schema.json"]
