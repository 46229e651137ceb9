"""``qinglian demo --districts N`` (tooling/citydemo.py): a city and two districts as
``nameko run`` processes, each district with a seeded year loaded, agree on what was
shared; bad input is refused before anything is written."""
import pytest

from tooling.citydemo import run_city_demo


@pytest.fixture
def var(tmp_path, monkeypatch):
    monkeypatch.setenv("QINGLIAN_VAR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.mark.parametrize("districts, share", [(0, 0.02), (100, 0.02), (2, 0), (2, 1.5)])
def test_bad_input_is_refused_and_writes_nothing(var, capsys, districts, share):
    assert run_city_demo(districts, check=True, year_share=share) == 2
    assert "✗" in capsys.readouterr().out
    assert not var.exists()


def test_two_districts_with_a_year_each_agree(var, capsys):
    assert run_city_demo(2, check=True, services=["exchange"], year_share=0.001,
                         base_port=None, prefix="qlt-citydemo") == 0
    out = capsys.readouterr().out
    assert "district-01: a year loaded" in out and "district-02: a year loaded" in out
    assert "✓ every node holds what the others shared" in out
