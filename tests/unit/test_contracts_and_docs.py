"""Code and its contracts/docs must not drift apart."""
import jsonschema
import pytest

from shared import apidoc, contracts, openapi


def test_no_drift_between_code_and_contracts():
    problems = contracts.drift()
    assert problems == [], "\n".join(problems)


def test_no_drift_between_the_services_and_their_openapi_documents():
    problems = openapi.drift()
    assert problems == [], "\n".join(problems)


def test_the_openapi_documents_are_valid_and_name_every_operation():
    import schemathesis
    for service in openapi.services_with_api():
        app = openapi._load_app(service)
        doc = openapi.document(app, service)
        assert doc["openapi"] == "3.1.0"
        for result in schemathesis.openapi.from_dict(doc).get_all_operations():
            result.ok()  # raises on a route the document describes wrongly
        ops = {o["operationId"]: (verb, o) for p in doc["paths"].values() for verb, o in p.items()}
        assert set(ops) == set(app.operations), service
        for name, op in app.operations.items():
            verb, o = ops[name]
            assert verb == ("post" if op.kind == "command" else "get")
            assert str(op.status) in o["responses"] and "400" in o["responses"]
            assert o["x-roles"] == ([] if op.public else list(op.roles))
            assert ("security" in o) is (not op.public)


def test_every_event_type_has_a_payload_schema_that_rejects_junk():
    for event_type, cls in contracts.load_all_event_types().items():
        schema = contracts._schema(str(contracts.schema_file(event_type, cls.schema_version)))
        assert schema.get("additionalProperties") is False, event_type
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"unexpected": 1}, schema)


def test_the_envelope_schema_rejects_a_message_missing_its_metadata():
    body = {"event_id": "7c1d5f8e-3a52-4c55-9f5c-1d2f1b0f7a10", "position": 1, "stream_id": "Unit:x",
            "stream_type": "Unit", "version": 1, "type": "Unit.Renamed", "schema_version": 1,
            "payload": {"unit_id": "x", "name": "y"}, "metadata": {}}
    with pytest.raises(jsonschema.ValidationError):
        contracts.validate_message(body)
    body["metadata"] = {"node": "n", "correlation_id": "c", "occurred_at": "2026-11-01T08:00:00+08:00"}
    contracts.validate_message(body)
    body["payload"]["name"] = ""
    with pytest.raises(jsonschema.ValidationError):
        contracts.validate_message(body)


def test_api_doc_is_generated_from_the_code():
    assert apidoc.API_MD.read_text(encoding="utf-8") == apidoc.render(), \
        "docs/API.md is out of date: run `qinglian docs api`"
