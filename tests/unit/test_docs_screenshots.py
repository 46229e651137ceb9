"""`qinglian docs screenshots`: the user guide's pictures come from the browser tests'
var/screenshots/ on request; the tests themselves never write docs/console/."""
from __future__ import annotations

from pathlib import Path

from tooling.cli import refresh_screenshots

ROOT = Path(__file__).resolve().parents[2]


def test_refresh_copies_the_guides_pictures_only(tmp_path):
    taken, guide = tmp_path / "screenshots", tmp_path / "guide"
    taken.mkdir()
    guide.mkdir()
    (guide / "00-home.png").write_bytes(b"old home")
    (guide / "70-oversight-city.png").write_bytes(b"old city")
    (taken / "00-home.png").write_bytes(b"new home")
    (taken / "99-not-in-the-guide.png").write_bytes(b"other")
    copied, missing = refresh_screenshots(taken, guide)
    assert (copied, missing) == (["00-home.png"], ["70-oversight-city.png"])
    assert (guide / "00-home.png").read_bytes() == b"new home"
    assert (guide / "70-oversight-city.png").read_bytes() == b"old city"  # no shot: kept
    assert sorted(p.name for p in guide.iterdir()) == ["00-home.png", "70-oversight-city.png"]


def test_browser_tests_shoot_into_var_screenshots_only():
    # every picture of the guide is a shot some test takes under the same name, and no
    # test builds a path into docs/console (where a copy would rewrite a tracked file)
    tests = sorted((ROOT / "services" / "console" / "tests").rglob("*.py"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in tests)
    for path in ('"docs" / "console"', "'docs' / 'console'", '"docs/console', "'docs/console"):
        assert path not in text
    for picture in sorted((ROOT / "docs" / "console").glob("*.png")):
        assert '"%s"' % picture.stem in text, "no test shoots %s" % picture.name
