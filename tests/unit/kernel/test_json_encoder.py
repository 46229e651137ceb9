"""``shared.events.json_encoder`` writes what ``json.dumps`` writes with the same options:
the log's payloads are hashed as stored, and read models compare their JSON text in SQL."""
import json

import pytest

from shared.db import JSONText
from shared.events import canonical_json, json_encoder

VALUES = [{"b": [None, True, False, 1.5, 1e300, -0.0, 3], "a": "中文\n\"\\\x00\u2028", "z": {"y": {}, "x": []}},
          "只是字符串", 7, 2.5, None, [], {}]


@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("ensure_ascii", [False, True])
@pytest.mark.parametrize("compact", [False, True])
def test_the_same_text_as_json_dumps(sort_keys, ensure_ascii, compact):
    encode = json_encoder(sort_keys, ensure_ascii, compact)
    process = JSONText(sort_keys=sort_keys, ensure_ascii=ensure_ascii, compact=compact) \
        .bind_processor(None)
    for value in VALUES:
        expected = json.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                              separators=(",", ":") if compact else None)
        assert encode(value) == expected
        assert process(value) == (None if value is None else expected)


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": ["中"]}) == '{"a":["中"],"b":1}'


def test_what_json_cannot_encode_is_refused_as_before():
    with pytest.raises(TypeError):
        canonical_json({"a": object()})
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises((ValueError, RecursionError)):
        canonical_json(circular)
