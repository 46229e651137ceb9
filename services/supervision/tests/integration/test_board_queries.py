"""The console's 工作台 and 整改看板 read models (rectification_overview, rectification_board)
on SQLite and PostgreSQL: counts by colour are the database's over the whole subtree,
however few items a page lists; colours follow the deadline as of today (the service's
clock); a column pages; a unit-admin sees their own subtree only."""
from tests.harness.supervision import EVIDENCE, INSPECTOR, VIEWER, unit_admin


def _seed(node, clock):
    """u1: 2 overdue, 1 due in 3 days, 2 later; u2: 1 overdue, 1 later; one of u2's
    closed and one of u1's awaiting verification."""
    node.district()
    for deadline in ("2024-03-05", "2024-03-06", "2024-03-13", "2024-04-30", "2024-05-30"):
        node.finding("u1-s1", deadline=deadline)
    node.finding("u2", deadline="2024-03-04")
    later = node.finding("u2", deadline="2024-06-30")["rect_id"]
    waiting = node.finding("u1", deadline="2024-06-01")["rect_id"]
    done = node.finding("u2", deadline="2024-06-02")["rect_id"]
    for rid, who in ((waiting, unit_admin("u1")), (done, unit_admin("u2"))):
        node.run("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, who)
    node.run("verify_rectification", {"rect_id": done, "note": "已销号"}, INSPECTOR)
    clock.set("2024-03-10T09:00")  # three of the open ones are past their deadline now
    return later


def test_overview_counts_every_open_one_and_lists_the_most_urgent(any_node, clock):
    _seed(any_node, clock)
    o = any_node.query("rectification_overview", {"unit_id": "district", "soon_days": 7,
                                                  "limit": 2, "units_limit": 1}, VIEWER)
    assert o["today"] == "2024-03-10"
    assert o["totals"] == {"red": 3, "yellow": 1, "green": 3, "total": 7}
    assert o["units_with_open"] == 2
    # earliest deadline first, with its colour; the unit with the most overdue first
    assert [(i["deadline"], i["colour"]) for i in o["urgent"]] == [
        ("2024-03-04", "red"), ("2024-03-05", "red")]
    assert [(u["unit_id"], u["red"], u["yellow"], u["green"]) for u in o["per_unit"]] == [
        ("u1-s1", 2, 1, 2)]
    # each row names its unit (the directory's name, joined to the row)
    assert [(i["unit_id"], i["unit_name"]) for i in o["urgent"]] == [
        ("u2", "单位u2"), ("u1-s1", "单位u1-s1")]
    assert [u["name"] for u in o["per_unit"]] == ["单位u1-s1"]
    mine = any_node.query("rectification_overview", {"unit_id": "u1"}, unit_admin("u1"))
    assert mine["totals"] == {"red": 2, "yellow": 1, "green": 2, "total": 5}
    assert {i["unit_id"] for i in mine["urgent"]} == {"u1-s1"}


def test_board_columns_count_everything_and_page_one_column(any_node, clock):
    later = _seed(any_node, clock)
    b = any_node.query("rectification_board", {"unit_id": "district", "limit": 3}, VIEWER)
    cols = b["columns"]
    assert list(cols) == ["open", "evidence_submitted", "closed"]
    assert (cols["open"]["total"], cols["open"]["red"], cols["open"]["yellow"]) == (7, 3, 1)
    assert [i["deadline"] for i in cols["open"]["items"]] == ["2024-03-04", "2024-03-05", "2024-03-06"]
    assert [i["unit_name"] for i in cols["open"]["items"]] == ["单位u2", "单位u1-s1", "单位u1-s1"]
    assert cols["closed"]["items"][0]["unit_name"] == "单位u2"
    assert cols["open"]["next_offset"] == 3
    assert (cols["evidence_submitted"]["total"], cols["closed"]["total"]) == (1, 1)
    assert cols["closed"]["items"][0]["colour"] == "green" and cols["closed"]["next_offset"] is None
    page3 = any_node.query("rectification_board", {"unit_id": "district", "status": "open",
                                                   "limit": 3, "offset": 6}, VIEWER)
    assert list(page3["columns"]) == ["open"]
    assert [i["rect_id"] for i in page3["columns"]["open"]["items"]] == [later]
    assert page3["columns"]["open"]["next_offset"] is None


def test_a_unit_admin_cannot_read_another_subtree(any_node, clock):
    _seed(any_node, clock)
    for name in ("rectification_overview", "rectification_board"):
        err = any_node.fails(name, {"unit_id": "u2"}, unit_admin("u1"), kind="query")
        assert err.status == 403
