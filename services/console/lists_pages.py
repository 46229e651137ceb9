"""单位与责任 in the console, beyond the tree: people (roles, promotions and the 廉政谈话 a
promotion schedules in education) and the unit's 任务清单 / 责任清单 / 考评细则 with their
versions and a side-by-side comparison of two chosen versions.

The comparison itself is the units service's (``compare_document_versions``, worked out by
``units.domain.diff_items``); these pages only lay it out. Every read and write goes
through the units service, which checks the role and the unit's subtree.
"""
from __future__ import annotations

from nameko.exceptions import UnknownService

from services.console.pages import _today, tree
from services.console.web import WRITERS, page
from services.units.domain import DOCUMENT_ITEM_FIELDS, ITEM_CHANGES
from shared.errors import Forbidden, NotFound

TALK_READERS = ("node-admin", "unit-admin", "inspector")  # education's list_talks


# -- items of a document, as the form sends them ----------------------------------------------------
def _items(web) -> list[dict]:
    """The editor's rows (内容, 责任岗位, 分值); a row left blank is no item."""
    form = web.request.form
    out = []
    for text, post, score in zip(form.getlist("item_text"), form.getlist("item_post"),
                                 form.getlist("item_score")):
        text, post, score = text.strip(), post.strip(), score.strip()
        if not (text or post or score):
            continue
        item = {"text": text}
        if post:
            item["owner_post"] = post
        if score:
            item["score"] = score
        out.append(item)
    return out


def _editor_rows(items: list[dict], blank: int = 2) -> list[dict]:
    return list(items) + [{} for _ in range(blank)]


# -- a new document -------------------------------------------------------------------------------
@page("/units/<unit_id>/documents/new", methods=("GET", "POST"), roles=WRITERS)
def document_new(web, unit_id):
    unit = web.query("units", "get_unit", {"unit_id": unit_id})
    errors, items = {}, []
    if web.request.method == "POST":
        items = _items(web)
        data = {"unit_id": unit_id, "kind": web.form("kind"), "title": web.form("title"),
                "items": items}
        if not items:
            errors = {"items": "条目: 至少填写一条", "_": "输入有误，请按提示修改后再提交"}
        else:
            result, errors = web.attempt("units", "draft_document", data)
            if not errors:
                return web.redirect("/documents/%s" % result["doc_id"],
                                    "已建立清单：%s" % data["title"])
    return web.render("lists_document_new.html", status=400 if errors else 200, unit=unit,
                      rows=_editor_rows(items, 3 if not items else 1), errors=errors,
                      values=web.request.form)


# -- a document: its versions, the current one, revising, comparing ----------------------------------------
def _document(web, doc_id: str) -> dict:
    doc = web.query("units", "document_versions", {"doc_id": doc_id})
    doc["unit"] = web.query("units", "get_unit", {"unit_id": doc["unit_id"]})
    return doc


@page("/documents/<doc_id>")
def document(web, doc_id):
    doc = _document(web, doc_id)
    return web.render("lists_document.html", doc=doc, rows=_editor_rows(doc["items"]),
                      errors={}, note="")


@page("/documents/<doc_id>/revise", methods=("POST",), roles=WRITERS)
def document_revise(web, doc_id):
    items = _items(web)
    errors = {}
    if not items:
        errors = {"items": "条目: 至少填写一条", "_": "输入有误，请按提示修改后再提交"}
    else:
        result, errors = web.attempt("units", "revise_document", {
            "doc_id": doc_id, "title": web.form("title"), "items": items, "note": web.form("note")})
        if not errors:
            return web.redirect("/documents/%s" % doc_id, "已修订为第 %d 版" % result["revision"])
    doc = _document(web, doc_id)
    return web.render("lists_document.html", status=400, doc=doc, rows=_editor_rows(items),
                      errors=errors, note=web.form("note"), title=web.form("title"))


def _revision(web, name: str, default: int) -> int:
    value = web.arg(name)
    if not value:
        return default
    if not value.isdigit():
        raise NotFound("没有这个版本")
    return int(value)


@page("/documents/<doc_id>/compare")
def document_compare(web, doc_id):
    doc = _document(web, doc_id)
    latest = doc["revision"]
    old = _revision(web, "from", max(1, latest - 1))
    new = _revision(web, "to", latest)
    diff = web.query("units", "compare_document_versions",
                     {"doc_id": doc_id, "from_revision": old, "to_revision": new})
    return web.render("lists_document_compare.html", doc=doc, diff=diff, old=old, new=new,
                      fields=DOCUMENT_ITEM_FIELDS, changes=ITEM_CHANGES)


# -- people: roles, promotions, the integrity talk a promotion schedules ---------------------------------
def _talks(web, person: dict) -> tuple[list[dict] | None, str | None]:
    """The person's 廉政谈话 (education's records), or why they cannot be shown."""
    if not web.can(*TALK_READERS):
        return None, None
    try:
        talks = web.query("education", "list_talks", {"unit_id": person["unit_id"]})["talks"]
    except UnknownService:
        return None, "教育服务未运行，暂时无法显示廉政谈话安排"
    except (Forbidden, NotFound):
        return None, None
    return [t for t in talks if t["person_id"] == person["person_id"]], None


def _person_page(web, person_id: str, errors: dict, status: int = 200):
    person = web.query("units", "get_person", {"person_id": person_id})
    unit = web.query("units", "get_unit", {"unit_id": person["unit_id"]})
    talks, talks_note = _talks(web, person)
    return web.render("lists_person.html", status=status, person=person, unit=unit,
                      units=tree(web) if web.writer else [], talks=talks, talks_note=talks_note,
                      errors=errors, today=_today(web).isoformat(), values=web.request.form)


@page("/people/<person_id>")
def person(web, person_id):
    return _person_page(web, person_id, {})


@page("/people/<person_id>/promote", methods=("POST",), roles=WRITERS)
def person_promote(web, person_id):
    _r, errors = web.attempt("units", "promote_person", {
        "person_id": person_id, "new_post": web.form("new_post"),
        "unit_id": web.form("unit_id"), "effective_on": web.form("effective_on")})
    if errors:
        return _person_page(web, person_id, errors, 400)
    return web.redirect("/people/%s" % person_id, "已记录提拔，教育服务将据此安排廉政谈话")


@page("/people/<person_id>/roles/remove", methods=("POST",), roles=WRITERS)
def person_role_remove(web, person_id):
    _r, errors = web.attempt("units", "remove_role", {"person_id": person_id,
                                                      "role": web.form("role")})
    if errors:
        return _person_page(web, person_id, errors, 400)
    return web.redirect("/people/%s" % person_id, "已免去该职务")
