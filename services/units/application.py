"""The units service layer: each command and query, its input schema and who may run it.

A command loads what its rules need (its aggregate with ``uow.get``, the tree's facts
through the read port ``uow.units``: ``queries.UnitsReadPort``), lets the aggregate decide
(every rule is in ``domain.py``), saves and answers. Queries read with ``queries.py``."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from services.units import queries as q
from services.units import schemas as s
from services.units.domain import (
    DisciplineTraining, ExemplaryRound, IntegrityPledge, LetterCoverage, MicroPowerList, Person,
    ResponsibilityDocument, ResponsibilityLetter, Unit, coverage_figures, diff_items, diff_summary,
)
from services.units.projections import PROJECTIONS, UNIT_TREE
from shared import config
from shared.app import Application, new_id
from shared.auth import ANY_ROLE, NODE_ADMIN, WRITERS
from shared.errors import NotFound
from shared.projections import as_of_view
from shared.store import EventStore, stream_history
from shared.events import iso_to_us

app = Application("units", unit_path=q.unit_path)
app.projections = PROJECTIONS
app.read_port("units", q.UnitsReadPort)


def _person_unit(conn, data) -> str | None:
    return q.person_unit(conn, data["person_id"])


def _doc_unit(conn, data) -> str | None:
    return q.document_unit(conn, data["doc_id"])


def _letter_issuer(conn, data) -> str | None:
    return q.letter_issuer(conn, ResponsibilityLetter.letter_id(data["period"], data["target_unit_id"]))


# -- the unit tree ----------------------------------------------------------------------
@app.command("register_unit", s.RegisterUnit, roles=WRITERS, scope="parent_id", status=201)
def register_unit(uow, d):
    """Add a unit (机关单位 / 科室 / 基层站所) under a parent; roots are city or district."""
    parent = uow.units.require(d["parent_id"]) if d["parent_id"] is not None else None
    unit_id = new_id(d["unit_id"])
    unit = Unit.register(unit_id, d["name"], d["kind"], d["level"], d["parent_id"], parent=parent,
                         by_node_admin=uow.actor.has(NODE_ADMIN), taken=uow.exists(Unit, unit_id))
    uow.save(unit)
    return uow.units.unit(unit_id) or {"unit_id": unit_id}


@app.command("rename_unit", s.RenameUnit, roles=WRITERS, scope="unit_id")
def rename_unit(uow, d):
    unit = uow.get(Unit, d["unit_id"])
    unit.rename(d["name"])
    uow.save(unit)
    return {"unit_id": unit.id, "name": unit.name, "version": unit.version}


@app.command("move_unit", s.MoveUnit, roles=WRITERS, scope="unit_id")
def move_unit(uow, d):
    """Re-parent a unit with its whole subtree; the new parent must be in scope too."""
    uow.check_scope(WRITERS, d["parent_id"])
    unit = uow.get(Unit, d["unit_id"])
    new_parent = uow.units.require(d["parent_id"])
    unit.move(d["parent_id"], parent_path=new_parent["path"], own_path=uow.units.path(unit.id))
    uow.save(unit)
    return uow.units.unit(unit.id)


@app.command("set_demonstration_site", s.SetDemonstrationSite, roles=(NODE_ADMIN,), scope="unit_id")
def set_demonstration_site(uow, d):
    """示范点: designated by the district."""
    unit = uow.get(Unit, d["unit_id"])
    unit.set_demonstration_site(d["demonstration_site"])
    uow.save(unit)
    return {"unit_id": unit.id, "demonstration_site": unit.demonstration_site}


@app.command("set_pilot_flags", s.SetPilotFlags, roles=(NODE_ADMIN,), scope="unit_id")
def set_pilot_flags(uow, d):
    """试点 flags, e.g. 清廉便民服务."""
    unit = uow.get(Unit, d["unit_id"])
    unit.set_pilot_flags(d["pilot_flags"])
    uow.save(unit)
    return {"unit_id": unit.id, "pilot_flags": unit.pilot_flags}


@app.command("deactivate_unit", s.DeactivateUnit, roles=(NODE_ADMIN,), scope="unit_id")
def deactivate_unit(uow, d):
    below = uow.units.active_below(d["unit_id"])
    unit = uow.get(Unit, d["unit_id"])
    unit.deactivate(d["reason"], active_below=len(below))
    uow.save(unit)
    return {"unit_id": unit.id, "active": False}


@app.query("get_unit", s.UnitRef, scope="unit_id")
def get_unit(conn, d, actor):
    return q.require_unit(conn, d["unit_id"])


@app.query("list_units", s.ListUnits)
def list_units(conn, d, actor):
    """The subtree under a unit (the unit itself first), a page of ``limit`` at a time:
    pass the answer's ``next`` as ``cursor`` for the next page (None: the last)."""
    q.require_unit(conn, d["unit_id"])
    return q.subtree_units_page(conn, d["unit_id"], d["limit"], d["cursor"], d["include_inactive"])


@app.query("root_units", s.Empty)
def root_units(conn, d, actor):
    """The tops of the node's tree (where the console's tree starts); a unit-admin, who
    acts only in their subtree, gets its root instead. Other roles see the whole node."""
    if actor.unit_scope and not actor.has(NODE_ADMIN):
        return {"units": [q.require_unit(conn, actor.unit_scope)]}
    return {"units": q.root_units(conn)}


@app.query("unit_tree_as_of", s.AsOf)
def unit_tree_as_of(conn, d, actor):
    """The subtree as it stood at a past log position or time, a page at a time (as
    ``list_units``); rebuilt from the log once per moment and kept (``as_of_view``)."""
    store = EventStore(conn.engine)
    until = iso_to_us(d["at"].isoformat()) if d.get("at") else None
    with as_of_view(store, [UNIT_TREE], position=d.get("position"), until_us=until) as c:
        page = q.subtree_units_page(c, d["unit_id"], d["limit"], d["cursor"], include_inactive=True)
    return {"as_of": d["position"] if d.get("position") is not None else d["at"].isoformat(), **page}


# -- people ---------------------------------------------------------------------------------
@app.command("register_person", s.RegisterPerson, roles=WRITERS, scope="unit_id", status=201)
def register_person(uow, d):
    """Someone whose role matters (党组织书记, 纪检委员, cadres). Stays on this node."""
    uow.units.require(d["unit_id"])
    person_id = new_id(d["person_id"])
    person = Person.register(person_id, d["name"], d["unit_id"], d["post"], d["young_cadre"],
                             taken=uow.exists(Person, person_id))
    uow.save(person)
    return {"person_id": person_id, "unit_id": d["unit_id"]}


@app.command("assign_role", s.AssignRole, roles=WRITERS, scope=_person_unit)
def assign_role(uow, d):
    person = uow.get(Person, d["person_id"])
    person.assign_role(d["role"], d["part_time"])
    uow.save(person)
    return {"person_id": person.id, "roles": person.roles}


@app.command("remove_role", s.RemoveRole, roles=WRITERS, scope=_person_unit)
def remove_role(uow, d):
    person = uow.get(Person, d["person_id"])
    person.remove_role(d["role"])
    uow.save(person)
    return {"person_id": person.id, "roles": person.roles}


@app.command("promote_person", s.PromotePerson, roles=WRITERS, scope=_person_unit)
def promote_person(uow, d):
    """新提拔: recorded here, and the education service schedules the 廉政谈话."""
    uow.check_scope(WRITERS, d["unit_id"])
    uow.units.require(d["unit_id"])
    person = uow.get(Person, d["person_id"])
    person.promote(d["new_post"], d["unit_id"], d["effective_on"])
    uow.save(person)
    return {"person_id": person.id, "post": person.post, "unit_id": person.unit_id}


@app.query("get_person", s.PersonRef, scope=_person_unit)
def get_person(conn, d, actor):
    row = q.person_row(conn, d["person_id"])
    if row is None:
        raise NotFound("人员「%s」不存在" % d["person_id"])
    return row


@app.query("list_people", s.UnitRef, scope="unit_id")
def list_people(conn, d, actor):
    """People of a unit, with their roles (part-time 纪检委员 flagged: 身兼数职)."""
    q.require_unit(conn, d["unit_id"])
    return {"people": q.people_of(conn, d["unit_id"])}


# -- responsibility system -------------------------------------------------------------------
@app.command("draft_document", s.DraftDocument, roles=WRITERS, scope="unit_id", status=201)
def draft_document(uow, d):
    """任务清单 / 责任清单 / 考核细则: first version."""
    uow.units.require(d["unit_id"])
    doc_id = new_id(d["doc_id"])
    doc = ResponsibilityDocument.draft(doc_id, d["unit_id"], d["kind"], d["title"], d["items"],
                                       taken=uow.exists(ResponsibilityDocument, doc_id))
    uow.save(doc)
    return {"doc_id": doc_id, "revision": doc.revision}


@app.command("revise_document", s.ReviseDocument, roles=WRITERS, scope=_doc_unit)
def revise_document(uow, d):
    doc = uow.get(ResponsibilityDocument, d["doc_id"])
    doc.revise(d["title"], d["items"], d["note"])
    uow.save(doc)
    return {"doc_id": doc.id, "revision": doc.revision}


@app.query("get_document", s.DocumentRef, scope=_doc_unit)
def get_document(conn, d, actor):
    row = q.document_row(conn, d["doc_id"])
    if row is None:
        raise NotFound("文件「%s」不存在" % d["doc_id"])
    return row


@app.query("list_documents", s.ListDocuments, scope="unit_id")
def list_documents(conn, d, actor):
    return {"documents": q.documents_of(conn, d["unit_id"], d.get("kind"))}


@app.query("document_versions", s.DocumentRef, scope=_doc_unit)
def document_versions(conn, d, actor):
    """A document with every version it has had (第 1 版, 第 2 版, ...), newest last."""
    doc = get_document(conn, d, actor)
    return dict(doc, versions=q.document_versions(conn, d["doc_id"]))


@app.query("compare_document_versions", s.CompareDocument, scope=_doc_unit)
def compare_document_versions(conn, d, actor):
    """Two versions side by side: each item added, removed, changed (which fields) or the
    same (``units.domain.diff_items``)."""
    doc = get_document(conn, d, actor)
    by_revision = {v["revision"]: v for v in q.document_versions(conn, d["doc_id"])}
    errors = {f: ["没有第 %d 版" % d[f]] for f in ("from_revision", "to_revision")
              if d[f] not in by_revision}
    if errors:
        raise NotFound("该清单没有所选的版本", errors)
    old, new = by_revision[d["from_revision"]], by_revision[d["to_revision"]]
    rows = diff_items(old["items"], new["items"])
    return {"doc_id": doc["doc_id"], "unit_id": doc["unit_id"], "kind": doc["kind"],
            "from": old, "to": new, "title_changed": old["title"] != new["title"],
            "rows": rows, "summary": diff_summary(rows)}


@app.command("issue_letter", s.IssueLetter, roles=WRITERS, scope="issuer_unit_id", status=201)
def issue_letter(uow, d):
    """责任书 from a unit to one below it (a section, a 基层站所) for a period."""
    issuer = uow.units.require(d["issuer_unit_id"])
    target = uow.units.require(d["target_unit_id"])
    letter_id = ResponsibilityLetter.letter_id(d["period"], d["target_unit_id"])
    letter = ResponsibilityLetter.issue(d["period"], d["issuer_unit_id"], d["target_unit_id"],
                                        d["signatory_role"], d["content"], issuer_path=issuer["path"],
                                        target_path=target["path"],
                                        taken=uow.exists(ResponsibilityLetter, letter_id))
    uow.save(letter)
    _publish_coverage(uow, d["period"], d["target_unit_id"])
    return {"letter_id": letter.id, "status": "issued"}


@app.command("sign_letter", s.SignLetter, roles=WRITERS, scope="target_unit_id")
def sign_letter(uow, d):
    letter = uow.get(ResponsibilityLetter, ResponsibilityLetter.letter_id(d["period"], d["target_unit_id"]))
    letter.sign(d["signed_on"], d["signatory_role"])
    uow.save(letter)
    _publish_coverage(uow, d["period"], d["target_unit_id"])
    return {"letter_id": letter.id, "status": "signed"}


@app.command("revoke_letter", s.RevokeLetter, roles=WRITERS, scope=_letter_issuer)
def revoke_letter(uow, d):
    letter = uow.get(ResponsibilityLetter, ResponsibilityLetter.letter_id(d["period"], d["target_unit_id"]))
    letter.revoke(d["reason"])
    uow.save(letter)
    _publish_coverage(uow, d["period"], d["target_unit_id"])
    return {"letter_id": letter.id, "status": "revoked"}


def _publish_coverage(uow, period: str, unit_id: str) -> None:
    """The 责任书 coverage of the tree ``unit_id`` is in, for ``period``, recorded when it
    changed (``LetterCoverage.Published``: the exchange service takes it up to the city)."""
    root = uow.units.root_of(unit_id)
    if root is None:
        return
    figures = coverage_figures(uow.units.coverage(root, period))
    agg_id = LetterCoverage.coverage_id(root, period)
    agg = uow.get(LetterCoverage, agg_id) if uow.exists(LetterCoverage, agg_id) else LetterCoverage(agg_id)
    if agg.publish(root, period, figures):
        uow.save(agg)


@app.command("publish_coverage", s.CoveragePeriod, roles=(NODE_ADMIN,))
def publish_coverage(uow, d):
    """责任书 coverage of every tree on this node for ``period``, recorded if it changed
    (letters record it themselves; run this after units were added or moved)."""
    roots = uow.units.roots()
    for root in roots:
        _publish_coverage(uow, d["period"], root)
    return {"period": d["period"], "trees": len(roots)}


@app.query("letter_coverage", s.Coverage)
def letter_coverage(conn, d, actor):
    """全覆盖: share of the subtree (down to 基层站所) holding a signed 责任书, and who has not."""
    q.require_unit(conn, d["unit_id"])
    return q.coverage(conn, d["unit_id"], d["period"], d["limit"], d["cursor"])


# -- 微权力清单 ---------------------------------------------------------------------------------
@app.command("draft_micro_power", s.DraftMicroPower, roles=WRITERS, scope="unit_id", status=201)
def draft_micro_power(uow, d):
    uow.units.require(d["unit_id"])
    list_id = MicroPowerList.list_id(d["unit_id"], d["post"])
    mpl = MicroPowerList.draft_for(d["unit_id"], d["post"], d["content"],
                                   taken=uow.exists(MicroPowerList, list_id))
    uow.save(mpl)
    return {"list_id": mpl.id, "published_version": 0}


@app.command("edit_micro_power", s.DraftMicroPower, roles=WRITERS, scope="unit_id")
def edit_micro_power(uow, d):
    mpl = uow.get(MicroPowerList, MicroPowerList.list_id(d["unit_id"], d["post"]))
    mpl.edit(d["content"])
    uow.save(mpl)
    return {"list_id": mpl.id, "published_version": mpl.published_version}


@app.command("publish_micro_power", s.PublishMicroPower, roles=WRITERS, scope="unit_id")
def publish_micro_power(uow, d):
    """Publish the draft for public supervision; the public view shows it from now on."""
    mpl = uow.get(MicroPowerList, MicroPowerList.list_id(d["unit_id"], d["post"]))
    mpl.publish(d["published_on"])
    uow.save(mpl)
    return {"list_id": mpl.id, "published_version": mpl.published_version}


@app.query("get_micro_power", s.MicroPowerRef, scope="unit_id")
def get_micro_power(conn, d, actor):
    row = q.micro_power_row(conn, MicroPowerList.list_id(d["unit_id"], d["post"]))
    if row is None:
        raise NotFound("岗位「%s」没有小微权力清单" % d["post"])
    return dict(row)


@app.query("published_micro_power", s.PublishedMicroPower, public=True)
def published_micro_power(conn, d, actor):
    """Public, read-only: what a unit has published (no token needed; drafts never shown)."""
    unit = q.require_unit(conn, d["unit_id"])
    return {"unit_id": unit["unit_id"], "unit_name": unit["name"],
            "lists": q.published_micro_power(conn, d["unit_id"])}


@app.query("history", s.History)
def history(conn, d, actor):
    """Every event of one record, oldest first (who, when, what)."""
    return stream_history(conn, d["stream"], d["id"])



# -- 集中廉政承诺 -------------------------------------------------------------------------------
# A unit-admin (scope: the person's unit) or node-admin records that a party secretary or
# 纪检委员 of the register made the year's pledge, with its text and the enterprise and
# resident representatives who witnessed it; one per person and year (``IntegrityPledge``).
# ``pledge_coverage``: per unit of a subtree, its party secretaries and 纪检委员, who pledged
# in the year and who has not, and the units with nobody to pledge.
def _registered_person_unit(conn, data) -> str:
    """The scope of a practice's command about a person: their unit (404 when there is no
    such person, before any role is checked)."""
    return q.require_person(conn, data["person_id"])["unit_id"]


def _pledge_unit(conn, data) -> str:
    return q.require_pledge_unit(conn, data["pledge_id"])


def _today(uow):
    """The users' today (the runtime's clock in the node's zone): what a date may not pass."""
    return uow.now.astimezone(ZoneInfo(config.timezone_name())).date()


@app.command("record_pledge", s.RecordPledge, roles=WRITERS, scope=_registered_person_unit, status=201)
def record_pledge(uow, d):
    """A party secretary's or 纪检委员's 集中廉政承诺 for the year of ``pledged_on``."""
    person = uow.units.person(d["person_id"])
    pledge_id = IntegrityPledge.pledge_id(d["pledged_on"].year, person["person_id"])
    p = IntegrityPledge.make(person, d["role"], d["pledged_on"], _today(uow), d["text"], d["witnesses"],
                             d["occasion"], taken=uow.exists(IntegrityPledge, pledge_id))
    uow.save(p)
    return {"pledge_id": p.id, "year": d["pledged_on"].year}


@app.query("list_pledges", s.PledgesOfYear, roles=ANY_ROLE, scope="unit_id")
def list_pledges(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return {"pledges": q.list_pledges(conn, d["unit_id"], d["year"])}


@app.query("get_pledge", s.PledgeRef, roles=ANY_ROLE, scope=_pledge_unit)
def get_pledge(conn, d, actor):
    return q.get_pledge(conn, d["pledge_id"])


@app.query("pledge_coverage", s.PledgesOfYear, roles=ANY_ROLE, scope="unit_id")
def pledge_coverage(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return q.pledge_coverage(conn, d["unit_id"], d["year"])


# -- 纪检委员 roster, 选优配强 (issue 10 #25) ------------------------------------------------------
# Why here: who is a 纪检委员 of which unit, and whether 兼职 (身兼数职) or 专职, is already
# the people register's (``assign_role`` with ``part_time``); their training records are
# about the same private people, so they stay beside them on the node. A training's date is
# not after today (``DisciplineTraining``); ``discipline_roster``: per unit of a subtree, its
# 纪检委员 with 兼职/专职, their trainings and the year's hours, and the units without one.
@app.command("record_discipline_training", s.RecordDisciplineTraining, roles=WRITERS,
             scope=_registered_person_unit, status=201)
def record_discipline_training(uow, d):
    """选优配强: a training a 纪检委员 attended (the course, its date and hours)."""
    person = uow.units.person(d["person_id"])
    training_id = DisciplineTraining.training_id(person["person_id"], d["trained_on"].isoformat(), d["course"])
    t = DisciplineTraining.record(person, d["course"], d["trained_on"], _today(uow), d["hours"], d["organiser"],
                                  taken=uow.exists(DisciplineTraining, training_id))
    uow.save(t)
    return {"training_id": t.id, "person_id": person["person_id"]}


@app.query("discipline_roster", s.DisciplineRoster, roles=ANY_ROLE, scope="unit_id")
def discipline_roster(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return q.discipline_roster(conn, d["unit_id"], d["year"])


# -- 模范科室评选 (issue 10 #24) ------------------------------------------------------------------
# Why here: the nominees are units of the register (内设科室、二级单位、窗口单位 by their
# kind) and a round's scope is the organising unit's subtree, both kept here. The rules
# are ``ExemplaryRound``'s: one round per unit and year; a nominee scores another, never
# itself (the scorer's unit-admin or a node-admin); closing records ranking and exemplars.
def _round_unit(conn, data) -> str:
    return q.require_round_unit(conn, data["round_id"])


@app.command("open_exemplary_round", s.OpenExemplaryRound, roles=WRITERS, scope="unit_id", status=201)
def open_exemplary_round(uow, d):
    """模范科室评选: a unit opens the year's round (one per unit and year)."""
    unit = uow.units.require(d["unit_id"])
    round_id = ExemplaryRound.round_id(d["unit_id"], d["year"])
    r = ExemplaryRound.open(d["unit_id"], d["year"], d["title"], d["exemplars"], unit_name=unit["name"],
                            taken=uow.exists(ExemplaryRound, round_id))
    uow.save(r)
    return {"round_id": r.id}


@app.command("nominate_exemplary", s.Nominate, roles=WRITERS, scope=_round_unit)
def nominate_exemplary(uow, d):
    """A section, secondary unit or window below the organising unit nominated."""
    r = uow.get(ExemplaryRound, d["round_id"])
    nominee = uow.units.require(d["nominee_unit_id"])
    r.nominate(nominee, organiser_path=uow.units.path(r.unit_id))
    uow.save(r)
    return {"round_id": r.id, "nominees": len(r.nominees)}


@app.command("score_exemplary", s.ScoreNominee, roles=WRITERS, scope="scorer_unit_id")
def score_exemplary(uow, d):
    """互比互查: a nominee's scores of another nominee on 讲政治、守纪律、负责任、有效率."""
    if not uow.exists(ExemplaryRound, d["round_id"]):
        raise NotFound("没有这一轮评选", {"round_id": ["不存在"]})
    r = uow.get(ExemplaryRound, d["round_id"])
    r.score(d["scorer_unit_id"], d["nominee_unit_id"], d["scores"])
    uow.save(r)
    return {"round_id": r.id, "scores": len(r.scores)}


@app.command("close_exemplary_round", s.ExemplaryRoundRef, roles=WRITERS, scope=_round_unit)
def close_exemplary_round(uow, d):
    """The result: ranking on the four criteria and the exemplars selected. Final."""
    r = uow.get(ExemplaryRound, d["round_id"])
    selected = r.close()
    uow.save(r)
    return {"round_id": r.id, "selected": selected}


@app.query("list_exemplary_rounds", s.ExemplaryRounds, roles=ANY_ROLE, scope="unit_id")
def list_exemplary_rounds(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return {"rounds": q.exemplary_rounds(conn, d["unit_id"])}


@app.query("get_exemplary_round", s.ExemplaryRoundRef, roles=ANY_ROLE, scope=_round_unit)
def get_exemplary_round(conn, d, actor):
    return q.exemplary_round(conn, d["round_id"])
