"""Read models of the units service: the tables and the projections that build them
(the queries that read them: ``queries.py``)."""
from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table

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


UNIT_TREE = UnitTreeProjection(units, "Unit", "unit_tree")
PROJECTIONS = [UNIT_TREE, People(), Responsibility(), MicroPower()]


__all__ = ["PROJECTIONS", "UNIT_TREE", "metadata", "units", "people", "documents", "letters", "micro_power"]
