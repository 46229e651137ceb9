"""The three test tiers (docs/DEVELOPING.md, "Tests"): every test file is in one of them,
and a test's fixtures do not reach beyond its tier.

The fixture check reads the items of the run it is part of (all of them under `make test`,
only this file's when run alone)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIERS = ("unit", "integration", "e2e")
# Fixtures that start or reach a broker, a database or a browser (their dependants, such
# as supervision's `any_node`, include them in their closure).
INFRASTRUCTURE = {"pg_url", "sqlite_url", "db_url", "engine_for", "rabbit_admin", "vhost",
                  "node_config", "rabbit_config", "container_factory", "fault_broker",
                  "browser", "page"}
# Fixtures of several services or nodes, or a browser.
SEVERAL = {"browser", "page", "two_nodes", "network", "fresh_network"}
ALLOWED = {"unit": set(), "integration": INFRASTRUCTURE - SEVERAL, "e2e": INFRASTRUCTURE | SEVERAL}


def tier_of(path: Path) -> str | None:
    parts = path.relative_to(REPO).parts
    folder = parts[1] if parts[0] == "tests" else parts[3] if parts[0] == "services" else None
    return folder if folder in TIERS else None


def test_every_test_file_is_in_a_tier():
    files = [*REPO.glob("tests/**/test_*.py"), *REPO.glob("services/*/tests/**/test_*.py")]
    assert len(files) > 100
    outside = sorted(str(f.relative_to(REPO)) for f in files if tier_of(f) is None)
    assert outside == [], "test files outside tests/{unit,integration,e2e}: %s" % outside


def test_no_test_uses_a_fixture_beyond_its_tier(request):
    beyond = []
    for item in request.session.items:
        tier = tier_of(Path(item.path))
        used = set(getattr(item, "fixturenames", ())) & (INFRASTRUCTURE | SEVERAL)
        if tier and used - ALLOWED[tier]:
            beyond.append("%s (%s) uses %s" % (item.nodeid, tier, sorted(used - ALLOWED[tier])))
    assert beyond == [], "\n".join(beyond)
