"""Read models of the units service: the tables and the projections that build them
(the queries that read them: ``queries.py``) - the unit tree, the people register, the
responsibility documents and letters, 微权力清单, and the practices: 集中廉政承诺
(pledges), the 纪检委员 trainings and 模范科室评选 (rounds). Handlers write rows by key only."""
from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

from shared.db import JSONText
from shared.projections import Projection, on
from shared.unittree import UnitTreeProjection, unit_tree_table

metadata = MetaData()

units = unit_tree_table(metadata, "unit_tree")

people = Table(
    "people", metadata,
    Column("person_id", String(100), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("post", String(200), nullable=False),
    Column("roles", JSONText, nullable=False),
    Column("part_time_roles", JSONText, nullable=False),
    Column("young_cadre", Boolean, nullable=False, default=False),
    Column("last_promoted_on", String(10)),
)

documents = Table(
    "responsibility_documents", metadata,
    Column("doc_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("kind", String(30), nullable=False),
    Column("title", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("items", JSONText, nullable=False),
    Column("updated_at", String(40), nullable=False),
)

letters = Table(
    "responsibility_letters", metadata,
    Column("letter_id", String(200), primary_key=True),
    Column("period", String(20), nullable=False, index=True),
    Column("issuer_unit_id", String(100), nullable=False),
    Column("target_unit_id", String(100), nullable=False, index=True),
    Column("signatory_role", String(50), nullable=False),
    Column("status", String(10), nullable=False),  # issued | signed | revoked
    Column("signed_on", String(10)),
)

micro_power = Table(
    "micro_power_lists", metadata,
    Column("list_id", String(300), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("post", String(200), nullable=False),
    Column("draft", JSONText, nullable=False),
    Column("published", JSONText),
    Column("published_version", Integer, nullable=False, default=0),
    Column("published_on", String(10)),
)

# 集中廉政承诺: one row per pledge (person and year)
pledges = Table(
    "integrity_pledges", metadata,
    Column("pledge_id", String(120), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("person_id", String(100), nullable=False),
    Column("role", String(30), nullable=False),
    Column("year", Integer, nullable=False, index=True),
    Column("pledged_on", String(10), nullable=False),
    Column("text", Text, nullable=False),
    Column("witnesses", JSONText, nullable=False),
    Column("occasion", String(200)),
)

# 纪检委员 roster (选优配强): the trainings a 纪检委员 attended
trainings = Table(
    "discipline_trainings", metadata,
    Column("training_id", String(160), primary_key=True),
    Column("person_id", String(100), nullable=False, index=True),
    Column("unit_id", String(100), nullable=False),
    Column("course", String(200), nullable=False),
    Column("trained_on", String(10), nullable=False),
    Column("year", Integer, nullable=False),
    Column("hours", Float, nullable=False),
    Column("organiser", String(200)),
)

# 模范科室评选: one row per round (nominees and scores as JSON columns)
rounds = Table(
    "exemplary_rounds", metadata,
    Column("round_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("year", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("exemplars", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("nominees", JSONText, nullable=False),
    Column("scores", JSONText, nullable=False),
    Column("ranking", JSONText),
    Column("selected", JSONText),
)


class People(Projection):
    name = "people"
    tables = (people,)

    @on("Person.Registered")
    def registered(self, w, e):
        p = e.payload
        w.insert(people, person_id=p["person_id"], name=p["name"], unit_id=p["unit_id"],
                 post=p["post"], roles=[], part_time_roles=[], young_cadre=p["young_cadre"])

    @on("Person.RoleAssigned", "Person.RoleRemoved")
    def roles(self, w, e):
        row = w.get(people, person_id=e.payload["person_id"])
        roles, part = set(row["roles"]), set(row["part_time_roles"])
        role = e.payload["role"]
        if e.event_type == "Person.RoleAssigned":
            roles.add(role)
            if e.payload.get("part_time"):
                part.add(role)
        else:
            roles.discard(role)
            part.discard(role)
        w.update(people, {"person_id": row["person_id"]}, roles=sorted(roles),
                 part_time_roles=sorted(part))

    @on("Person.Promoted")
    def promoted(self, w, e):
        w.update(people, {"person_id": e.payload["person_id"]}, post=e.payload["new_post"],
                 unit_id=e.payload["unit_id"], last_promoted_on=e.payload["effective_on"])


class Responsibility(Projection):
    name = "responsibility"
    tables = (documents, letters)

    @on("ResponsibilityDocument.Drafted", "ResponsibilityDocument.Revised")
    def document(self, w, e):
        p = e.payload
        values = dict(title=p["title"], revision=p["revision"],
                      items=p["items"], updated_at=e.occurred_at)
        if e.event_type.endswith("Drafted"):
            w.insert(documents, doc_id=p["doc_id"], unit_id=p["unit_id"], kind=p["kind"], **values)
        else:
            w.update(documents, {"doc_id": p["doc_id"]}, **values)

    @on("ResponsibilityLetter.Issued")
    def issued(self, w, e):
        p = e.payload
        w.insert(letters, letter_id=p["letter_id"], period=p["period"],
                 issuer_unit_id=p["issuer_unit_id"], target_unit_id=p["target_unit_id"],
                 signatory_role=p["signatory_role"], status="issued", signed_on=None)

    @on("ResponsibilityLetter.Signed")
    def signed(self, w, e):
        w.update(letters, {"letter_id": e.payload["letter_id"]}, status="signed",
                 signed_on=e.payload["signed_on"])

    @on("ResponsibilityLetter.Revoked")
    def revoked(self, w, e):
        w.update(letters, {"letter_id": e.payload["letter_id"]}, status="revoked")


class MicroPower(Projection):
    name = "micro_power"
    tables = (micro_power,)

    @on("MicroPowerList.Drafted")
    def drafted(self, w, e):
        p = e.payload
        w.insert(micro_power, list_id=p["list_id"], unit_id=p["unit_id"], post=p["post"],
                 draft=p["content"], published=None,
                 published_version=0, published_on=None)

    @on("MicroPowerList.DraftEdited")
    def edited(self, w, e):
        w.update(micro_power, {"list_id": e.payload["list_id"]},
                 draft=e.payload["content"])

    @on("MicroPowerList.Published")
    def published(self, w, e):
        p = e.payload
        w.update(micro_power, {"list_id": p["list_id"]},
                 published=p["content"],
                 published_version=p["published_version"], published_on=p["published_on"])


class Pledges(Projection):
    name = "units_pledges"
    tables = (pledges,)

    @on("IntegrityPledge.Made")
    def made(self, w, e):
        p = e.payload
        w.insert(pledges, pledge_id=p["pledge_id"], unit_id=p["unit_id"], person_id=p["person_id"],
                 role=p["role"], year=p["year"], pledged_on=p["pledged_on"], text=p["text"],
                 witnesses=p["witnesses"], occasion=p.get("occasion"))


class Trainings(Projection):
    name = "units_discipline_trainings"
    tables = (trainings,)

    @on("DisciplineTraining.Recorded")
    def recorded(self, w, e):
        p = e.payload
        w.insert(trainings, training_id=p["training_id"], person_id=p["person_id"], unit_id=p["unit_id"],
                 course=p["course"], trained_on=p["trained_on"], year=int(p["trained_on"][:4]), hours=p["hours"],
                 organiser=p.get("organiser"))


class ExemplaryRounds(Projection):
    name = "units_exemplary_rounds"
    tables = (rounds,)

    @on("ExemplaryRound.Opened")
    def opened(self, w, e):
        p = e.payload
        w.insert(rounds, round_id=p["round_id"], unit_id=p["unit_id"], year=p["year"], title=p["title"],
                 exemplars=p["exemplars"], status="open", nominees=[], scores=[])

    @on("ExemplaryRound.Nominated")
    def nominated(self, w, e):
        row = w.get(rounds, round_id=e.payload["round_id"])
        w.update(rounds, {"round_id": row["round_id"]}, nominees=[*row["nominees"], e.payload["nominee_unit_id"]])

    @on("ExemplaryRound.Scored")
    def scored(self, w, e):
        p = e.payload
        row = w.get(rounds, round_id=p["round_id"])
        w.update(rounds, {"round_id": row["round_id"]}, scores=[*row["scores"], {
            "scorer_unit_id": p["scorer_unit_id"], "nominee_unit_id": p["nominee_unit_id"], "scores": p["scores"]}])

    @on("ExemplaryRound.Closed")
    def closed(self, w, e):
        p = e.payload
        w.update(rounds, {"round_id": p["round_id"]}, status="closed", ranking=p["ranking"], selected=p["selected"])


UNIT_TREE = UnitTreeProjection(units, "Unit", "unit_tree")
PROJECTIONS = [UNIT_TREE, People(), Responsibility(), MicroPower(), Pledges(), Trainings(), ExemplaryRounds()]


__all__ = ["PROJECTIONS", "UNIT_TREE", "metadata", "units", "people", "documents", "letters", "micro_power",
           "pledges", "trainings", "rounds"]
