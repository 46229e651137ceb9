"""Two versions of a 任务清单 / 责任清单 / 考评细则 compared item by item (units.domain,
pure): what was added, removed, changed (which fields) or kept."""
from services.units.domain import ITEM_CHANGES, diff_items, diff_summary


def test_two_versions_are_aligned_by_content_and_paired_within_a_replaced_stretch():
    old = [{"text": "甲"}, {"text": "乙", "score": 5}, {"text": "丙"}]
    new = [{"text": "甲"}, {"text": "乙", "score": 6}, {"text": "丁"}, {"text": "戊"}]
    rows = diff_items(old, new)
    assert [(r["change"], r["fields"]) for r in rows] == [
        ("same", []), ("changed", ["score"]), ("removed", []), ("added", []), ("added", [])]
    # reworded (texts mostly alike) is one item changed, not one removed and one added
    rows = diff_items([{"text": "每季度开展一次廉政风险排查", "owner_post": "纪检委员"}],
                      [{"text": "每半年开展一次廉政风险排查", "owner_post": "纪检委员"}])
    assert [(r["change"], r["fields"]) for r in rows] == [("changed", ["text"])]
    rows = diff_items(old, [{"text": "甲"}, {"text": "丙"}])
    assert [r["change"] for r in rows] == ["same", "removed", "same"]
    assert rows[1]["old"] == {"text": "乙", "score": 5} and rows[1]["new"] is None
    assert diff_summary(rows) == {"added": 0, "removed": 1, "changed": 0, "same": 2}


def test_identical_versions_are_all_the_same_and_an_empty_side_is_all_added_or_removed():
    items = [{"text": "甲", "owner_post": "办公室", "score": 5}, {"text": "乙"}]
    assert [r["change"] for r in diff_items(items, items)] == ["same", "same"]
    assert [r["change"] for r in diff_items([], items)] == ["added", "added"]
    assert [r["change"] for r in diff_items(items, [])] == ["removed", "removed"]
    assert set(diff_summary(diff_items(items, []))) == set(ITEM_CHANGES)


def test_a_moved_item_is_removed_in_one_place_and_added_in_the_other():
    a, b, c = {"text": "一"}, {"text": "二"}, {"text": "三"}
    rows = diff_items([a, b, c], [b, c, a])
    assert [r["change"] for r in rows].count("same") == 2
    assert diff_summary(rows)["added"] == 1 and diff_summary(rows)["removed"] == 1
