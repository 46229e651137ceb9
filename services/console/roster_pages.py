"""纪检委员 roster in the console (the units service's, issue 10 #25): /roster/discipline.

* Per unit of the user's subtrees: its 纪检委员 (兼职 or 专职), the year's trainings and
  hours, the last training; the units that have none (科室 aside); each member's trainings.
* A writer appoints a 纪检委员 (the unit, then the person picked by name, 兼职 or 专职:
  the register's ``assign_role``) and records a training (选优配强: the unit, then the
  纪检委员 picked by name, the course, its date and hours).

The services decide; the page only hides the forms the user's role may not use.
"""
from __future__ import annotations

from urllib.parse import urlencode

from services.console.pages import _today, raise_forbidden, roots, tree
from services.console.web import page

ROLE = "discipline_member"


def _year(web) -> int:
    value = web.arg("year") or web.form("year")
    return int(value) if value.isdigit() and 2000 <= int(value) <= 2100 else _today(web).year


def _people(web, unit_id, members: bool) -> list[dict]:
    """The unit's 纪检委员 (``members``) or the people who are not one yet, by name."""
    if not unit_id:
        return []
    return [p for p in web.query("units", "list_people", {"unit_id": unit_id})["people"]
            if (ROLE in (p.get("roles") or ())) == members]


@page("/roster/discipline", methods=("GET", "POST"))
def discipline_members(web):
    year = _year(web)
    errors, values, form = {}, {}, None
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        values, form = web.request.form, web.form("form")
        person_id = web.form("person_id")
        if form == "appoint":
            if not person_id:
                errors = {"person_id": "请选择人员"}
            else:
                _result, errors = web.attempt("units", "assign_role", {
                    "person_id": person_id, "role": ROLE, "part_time": web.form("part_time") == "1"})
            message = "已任命纪检委员"
        else:
            form = "training"
            if not person_id:
                errors = {"person_id": "请选择纪检委员"}
            else:
                _result, errors = web.attempt("units", "record_discipline_training", {
                    "person_id": person_id, "course": web.form("course"), "trained_on": web.form("trained_on"),
                    "hours": web.form("hours"), "organiser": web.form("organiser")})
            message = "已登记培训记录"
        if not errors:
            return web.redirect("/roster/discipline?" + urlencode({"year": year}), message)
    rosters = [web.query("units", "discipline_roster", {"unit_id": r["unit_id"], "year": year})
               | {"root_name": r["name"]} for r in roots(web)]
    chosen = values.get("unit_id") if values else None
    return web.render("roster_members.html", status=400 if errors else 200, year=year, rosters=rosters,
                      units=tree(web), errors=errors or {}, values=values, form=form,
                      today=_today(web).isoformat(),
                      members=_people(web, chosen, True) if form == "training" else [],
                      candidates=_people(web, chosen, False) if form == "appoint" else [])


@page("/roster/discipline/options")
def discipline_member_options(web):
    """htmx: the chosen unit's 纪检委员 (``members=1``) or its other people, by name."""
    members = web.arg("members") == "1"
    people = _people(web, web.arg("unit_id"), members)
    return web.render("roster_member_options.html", people=people, members=members)
