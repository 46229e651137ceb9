"""shared.config.relay_mode: QINGLIAN_RELAY, where a service's outbox relay runs."""
from __future__ import annotations

import pytest

from shared import config


def test_the_three_modes_and_the_old_spellings_of_off(monkeypatch):
    monkeypatch.delenv("QINGLIAN_RELAY", raising=False)
    assert config.relay_mode({}) == "on"
    # deploy/config.yaml maps an unset variable to its default; an empty value is the default
    assert config.relay_mode({"QINGLIAN_RELAY": ""}) == "on"
    assert config.relay_mode({"QINGLIAN_RELAY": " Process "}) == "process"
    for off in ("off", "0", "false", "FALSE"):
        assert config.relay_mode({"QINGLIAN_RELAY": off}) == "off"
    monkeypatch.setenv("QINGLIAN_RELAY", "process")
    assert config.relay_mode({}) == "process"


@pytest.mark.parametrize("value", ["yes", "thread", "child", "2"])
def test_anything_else_is_refused_in_chinese_naming_the_value(value):
    with pytest.raises(ValueError) as refused:
        config.relay_mode({"QINGLIAN_RELAY": value})
    assert "QINGLIAN_RELAY 应为 on、process 或 off" in str(refused.value)
    assert repr(value) in str(refused.value)
