"""The console's parts without a broker: the label catalogue, Chinese dates, sign-in
back-off and lockout on a moved clock, the vendored assets' checksums."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from services.console.settings import Settings
from services.console.signin import Refusal, SignIn, sign_in_records
from services.console.web import describe
from shared.auth import UserDirectory
from shared.db import make_engine
from shared.errors import BadInput
from shared.labels import Choices, catalogue, field_error, label, zh_date, zh_datetime

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor"


# -- the label catalogue --------------------------------------------------------------------------
def test_every_enum_of_every_service_has_a_chinese_label_for_every_code():
    found = catalogue()
    for name in ("units.UNIT_KINDS", "units.UNIT_LEVELS", "units.PERSON_ROLES",
                 "supervision.FINDING_SOURCES", "supervision.POST_FLAGS", "auth.ROLES",
                 "supervision.RECTIFICATION_STATUSES"):
        assert name in found, name
    for name, choices in found.items():
        assert choices.field and re.search(r"[\u4e00-\u9fff]", choices.field), name
        for code in choices:
            text = choices.label(code)
            assert re.search(r"[\u4e00-\u9fff]", text) and text != code, (name, code)


def test_choices_stay_a_tuple_of_codes_and_name_their_field_in_errors():
    kinds = catalogue()["units.UNIT_KINDS"]
    assert isinstance(kinds, tuple) and "section" in kinds and kinds[0] == "party_committee_dept"
    assert field_error(kinds).startswith("单位类型: 必须是以下之一：党委部门、政府部门、")
    assert kinds.code("科室") == "section" and kinds.code("section") == "section"
    assert kinds.code("不存在") is None
    assert label("supervision.POST_FLAGS", "fund_intensive") == "资金密集"
    assert label("units.UNIT_KINDS", "unknown-code") == "unknown-code"


def test_an_enum_field_error_from_a_service_is_shown_with_labels_not_codes():
    exc = BadInput("register_unit 的输入有误", {"kind": ["须为以下之一：party_committee_dept, section"]})
    errors = describe(exc)
    assert errors["kind"].startswith("单位类型: 必须是以下之一：党委部门")
    assert "party_committee_dept" not in "".join(errors.values())
    assert "register_unit" not in errors["_"]


def test_dates_are_written_the_chinese_way_in_shanghai_time():
    assert zh_date("2026-12-01") == "2026年12月1日 周二"
    assert zh_date("2026-12-01", weekday=False) == "2026年12月1日"
    # 2026-11-30 16:30 UTC is already 1 December in Shanghai
    assert zh_datetime("2026-11-30T16:30:00+00:00") == "2026年12月1日 周二 00:30"
    assert zh_date(None) == "" and zh_date("") == ""


def test_a_custom_choices_declaration_keeps_order():
    c = Choices("颜色", {"r": "红", "g": "绿"})
    assert list(c) == ["r", "g"] and c.options() == [("r", "红"), ("g", "绿")]


# -- sign-in back-off and lockout --------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1_800_000_000 * 1_000_000

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += int(seconds * 1_000_000)


@pytest.fixture
def signin(sqlite_url):
    clock = Clock()
    users = UserDirectory(make_engine(sqlite_url), "test", clock=clock)
    users.create_schema()
    users.add_user("zhang", "张三", ["viewer"])
    users.set_password("zhang", "right2026pw")
    s = SignIn(users, Settings(lock_after=4, address_lock_after=10, lock_seconds=600,
                               backoff_seconds=2))
    s.create_schema()
    s.clock = clock
    yield s
    users.engine.dispose()


def _outcomes(signin):
    with signin.users.engine.connect() as c:
        return [r.outcome for r in c.execute(sign_in_records.select()
                                             .order_by(sign_in_records.c.record_id))]


def test_failures_back_off_doubling_then_lock_and_a_success_resets(signin):
    clock = signin.clock
    for _ in range(2):
        with pytest.raises(ValueError):
            signin.attempt("zhang", "wrong", "10.0.0.1")
    # after the 2nd failure: 2 s of back-off, even for the right password
    with pytest.raises(Refusal) as r:
        signin.attempt("zhang", "right2026pw", "10.0.0.1")
    assert not r.value.locked and "秒后再试" in r.value.message()
    clock.advance(2.1)
    with pytest.raises(ValueError):
        signin.attempt("zhang", "wrong", "10.0.0.1")  # 3rd failure: 4 s now
    clock.advance(2.1)
    with pytest.raises(Refusal):
        signin.attempt("zhang", "right2026pw", "10.0.0.1")
    clock.advance(2.1)
    with pytest.raises(ValueError):
        signin.attempt("zhang", "wrong", "10.0.0.1")  # 4th: locked for 10 minutes
    clock.advance(60)
    with pytest.raises(Refusal) as r:
        signin.attempt("zhang", "right2026pw", "10.0.0.2")  # another address: still locked
    assert r.value.locked and "分钟后再试" in r.value.message()
    clock.advance(600)
    signin.attempt("zhang", "right2026pw", "10.0.0.2")  # the lock ran out
    with pytest.raises(ValueError):
        signin.attempt("zhang", "wrong", "10.0.0.2")  # the streak starts again from one
    signin.attempt("zhang", "right2026pw", "10.0.0.2")
    assert _outcomes(signin) == ["failure", "failure", "backoff", "failure", "backoff", "failure",
                                 "lockout", "locked", "success", "failure", "success"]


def test_an_unknown_user_is_refused_like_a_wrong_password(signin):
    with pytest.raises(ValueError) as e:
        signin.attempt("nobody", "right2026pw", "10.0.0.3")
    assert str(e.value) == "用户名或密码不正确"


def test_a_disabled_user_cannot_sign_in(signin):
    signin.users.set_disabled("zhang")
    with pytest.raises(ValueError):
        signin.attempt("zhang", "right2026pw", "10.0.0.4")


def test_password_rules(signin):
    for bad in ("short1", "onlyletters", "12345678901"):
        with pytest.raises(BadInput):
            signin.users.set_password("zhang", bad)
    assert signin.users.check_password("zhang", "right2026pw")


# -- the vendored assets are the files written down ----------------------------------------------------
def test_vendored_files_match_their_recorded_checksums():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    assert len(listed) == 6
    for digest, name in listed:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    for folder in ("htmx", "echarts", "flatpickr"):
        assert any(p.name.startswith("LICENSE") for p in (VENDOR / folder).iterdir()), folder
