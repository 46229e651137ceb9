"""contracts/federation/ is what the code would write; every contract is valid JSON
Schema; the AsyncAPI document names the three exchanges and only real event types."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from services.exchange import contracts

ROOT = Path(__file__).resolve().parents[4] / "contracts"


def test_no_drift_between_code_and_contracts():
    assert contracts.drift() == []


def test_every_contract_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(contracts.ENVELOPE.read_text()))
    for t in contracts.shared_event_types():
        jsonschema.Draft202012Validator.check_schema(
            json.loads((ROOT / "events" / ("%s.v1.schema.json" % t)).read_text()))


def test_asyncapi_describes_the_three_exchanges():
    doc = yaml.safe_load(contracts.ASYNCAPI.read_text())
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"] for c in doc["channels"].values()}
    assert exchanges == {"qinglian.shared", "qinglian.city", "qinglian.named"}
    for name, message in doc["components"]["messages"].items():
        ref = message["payload"]["allOf"][1]["properties"]["payload"]["$ref"]
        assert (contracts.ASYNCAPI.parent / ref).resolve().exists(), ref
    assert "Case.Compiled" not in doc["components"]["messages"]  # drafts never cross
    assert {"Case.Published", "Contribution.Added", "JointProblem.Resolved",
            "IndicatorReport.Recorded"} <= set(doc["components"]["messages"])
