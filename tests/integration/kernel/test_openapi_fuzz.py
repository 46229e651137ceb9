"""schemathesis against every service's own OpenAPI document (GET /openapi.json).

For each service a node is started (SQLite; units first, so the other services' mirror
holds two units), its document is fetched from the running service, and every
operation is called with a bounded number of examples schemathesis derives from the
document (``derandomize``: the same requests every run). For every answer:

* never a 5xx (``store_busy`` excepted: the writer lock was busy, try again);
* the answer matches the document (status code listed, content type, body schema);
* a refused request (4xx) appended no event (the log's head before and after, events
  matched by the fuzzing user: the services' own timers may write in between).

Both what the document allows (positive) and what it refuses (negative: wrong types,
missing fields, undeclared ones) are sent. ``OPENAPI_FUZZ_EXAMPLES`` bounds the run
(default 3 per operation); tests/integration/kernel/test_fuzz_operations.py adds hand-made edge
values (NUL, surrogates, bidi overrides, calendar edges) on both back-ends.
"""
from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from nameko.testing.utils import find_free_port, get_extension
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                         status_code_conformance)

from shared import openapi, registry
from shared.service import EventSourcing
from tests.harness import Api, wait_for
from tests.integration.kernel.test_fuzz_operations import _events_by, _head, _service_class, _start

EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.mark.parametrize("service", registry.services())  # every service with an API
def test_every_route_answers_as_its_document_says(service, container_factory, node_config,
                                                   admin_token):
    node_config["QINGLIAN_FEDERATION"] = "off"
    units_container, units_config = _start(container_factory, _service_class("units"), node_config,
                                           None if service == "units" else find_free_port())
    units_api = Api(units_config["WEB_SERVER_ADDRESS"], admin_token)
    for unit_id, parent in (("u-root", None), ("u1", "u-root")):
        status, body = units_api.post("register_unit", {
            "unit_id": unit_id, "name": unit_id, "kind": "government_dept",
            "level": "district" if parent is None else "unit", "parent_id": parent})
        assert status == 201, body
    if service == "units":
        container, config = units_container, units_config
    else:
        container, config = _start(container_factory, _service_class(service), node_config)
    provider = get_extension(container, EventSourcing)
    runtime = provider.runtime
    api = Api(config["WEB_SERVER_ADDRESS"], admin_token)
    wait_for(lambda: api.raw_get("/health/ready").status_code == 200, timeout=30)

    served = api.raw_get("/openapi.json")
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("application/json")
    document = served.json()
    assert document == openapi.document(provider.app, service)  # what contracts/ keeps, too
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    headers = {"Authorization": "Bearer %s" % admin_token}
    seen: dict[str, list[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(provider.app.operations)

    for operation in operations:
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                              operation.as_strategy(GenerationMode.NEGATIVE)))
        def one(case):
            before = _head(runtime)
            response = case.call(base_url=api.base, session=session, headers=headers, timeout=60)
            seen.setdefault(operation.label, []).append(response.status_code)
            if response.status_code == 503 and response.json().get("error") == "store_busy":
                return
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                written = _events_by(runtime, "admin", before)
                assert written == [], "%s refused (%d) but appended %s" % (
                    operation.label, response.status_code, [e.event_type for e in written])
        one()
    assert len(seen) == len(operations)  # every operation was called
