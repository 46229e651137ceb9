"""shared.config.max_workers: each service's worker pool, <SERVICE>_MAX_WORKERS."""
from __future__ import annotations

import pytest

from shared import config


def test_defaults_are_per_service(monkeypatch):
    for service in config.DEFAULT_PORTS:
        monkeypatch.delenv("%s_MAX_WORKERS" % service.upper(), raising=False)
    # the two that take the morning check-in burst, the others nameko's own 10
    assert config.max_workers("console") == 64
    assert config.max_workers("education") == 64
    for service in ("units", "supervision", "exchange"):
        assert config.max_workers(service) == config.NAMEKO_MAX_WORKERS == 10
    assert config.max_workers("a-test-service") == 10


def test_config_then_environment(monkeypatch):
    monkeypatch.setenv("UNITS_MAX_WORKERS", "24")
    assert config.max_workers("units") == 24
    assert config.max_workers("units", {"UNITS_MAX_WORKERS": "12"}) == 12
    assert config.max_workers("units", {"UNITS_MAX_WORKERS": 3}) == 3
    # deploy/config.yaml maps an unset variable to "": the environment, then the default
    assert config.max_workers("units", {"UNITS_MAX_WORKERS": ""}) == 24
    monkeypatch.delenv("UNITS_MAX_WORKERS")
    assert config.max_workers("units", {"UNITS_MAX_WORKERS": ""}) == 10
    # one service's setting is not another's
    assert config.max_workers("console", {"UNITS_MAX_WORKERS": "2"}) == 64


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "12 workers", " ", "１２", 0, -3, 2.5, True])
def test_a_bad_value_is_refused_in_chinese(value):
    with pytest.raises(ValueError) as caught:
        config.max_workers("education", {"EDUCATION_MAX_WORKERS": value})
    assert str(caught.value) == "EDUCATION_MAX_WORKERS 应为不小于 1 的整数（当前为 %r）" % (value,)


def test_a_bad_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv("CONSOLE_MAX_WORKERS", "many")
    with pytest.raises(ValueError, match="CONSOLE_MAX_WORKERS 应为不小于 1 的整数"):
        config.max_workers("console")


def test_every_service_setting_is_declared():
    for service in config.DEFAULT_PORTS:
        assert "%s_MAX_WORKERS" % service.upper() in config.ENV_VARS
