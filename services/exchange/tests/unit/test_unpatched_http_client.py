"""The feed prefetch's unpatched ``http.client`` leaves the process's own in place.

``eventlet.patcher.original`` re-imports the module on its first call and restores
``sys.modules`` but not the ``http`` package's attribute: after an in-process node had
prefetched a page, ``http.client.HTTPMessage`` in the rest of the process was another
class (found when tests/unit/kernel/test_http_parse.py ran after tests/e2e/test_scenario.py)."""
import http
import http.client
import sys

from services.exchange.federation import _unpatched_http_client


def test_the_unpatched_copy_is_apart_and_http_client_stays_the_process_own():
    own = sys.modules["http.client"]
    assert http.client is own
    # as on the first call in a process: eventlet's cached copy dropped, so it re-imports
    sys.modules.pop("__original_module_http.client", None)
    unpatched = _unpatched_http_client()
    assert unpatched is not own and unpatched.HTTPMessage is not own.HTTPMessage
    assert http.client is own and sys.modules["http.client"] is own
    assert _unpatched_http_client() is unpatched  # cached from then on
    assert http.client is own
