"""Read models of the education service: the tables and the projections that fill them
(the queries that read them are in ``queries.py``).

One projection per concern, each owning its tables, so any one can be rebuilt alone
(bump its ``version``). They cost nothing extra per command: the kernel moves one
shared inline checkpoint per commit. ``CheckInBoard`` is what the morning check-in
path touches - members, reminders, check-ins, streaks - and nothing else; its handler
does one insert and one keyed read-modify-write. Handlers look rows up by primary key
(or, for the inbox, by a record's ``ref``), so a rebuild or an as-of replay (in-memory
buffer) stays linear in the log. JSON values (tags, audience, item ids, figures...) are
``shared.db.JSONText`` columns: handlers write and queries read the values themselves.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import (
    Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text,
)

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db import JSONText
from shared.projections import Projection, on

from services.education.dates import iso_week, parse_date
from services.education.domain import WARNING_EDUCATION, normalise_tags

metadata = MetaData()


# -- check-in board ----------------------------------------------------------------------------
members = Table(
    "edu_members", metadata,
    Column("person_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("post", String(200)),
    Column("young_cadre", Boolean, nullable=False, default=False),
)

reminders = Table(
    "edu_reminders", metadata,
    Column("day", String(10), primary_key=True),
    Column("text", String(200), nullable=False),
    Column("item_id", String(100)),
    Column("published_at", String(40), nullable=False),
)

checkins = Table(
    "edu_checkins", metadata,
    Column("day", String(10), primary_key=True),
    Column("person_id", String(100), primary_key=True),
    # the member's unit when they checked in: a later move does not rewrite history
    Column("unit_id", String(100), nullable=False),
    Column("checked_at", String(40), nullable=False),
    Index("ix_edu_checkins_unit_day", "unit_id", "day"),
    Index("ix_edu_checkins_person_day", "person_id", "day"),
)

# the run each member is on: written blind from the check-in event (no read under the
# log's writer lock); best run and total are counted from edu_checkins when asked
streaks = Table(
    "edu_checkin_streaks", metadata,
    Column("person_id", String(100), primary_key=True),
    Column("last_day", String(10), nullable=False),
    Column("current", Integer, nullable=False),
)


class CheckInBoard(Projection):
    name = "education_checkins"
    tables = (members, reminders, checkins, streaks)

    @on("MemberMirror.Recorded")
    def member(self, w, e):
        p = e.payload
        w.upsert(members, {"person_id": p["person_id"]}, unit_id=p["unit_id"], post=p["post"],
                 young_cadre=bool(p["young_cadre"]))

    @on("DailyReminder.Published", "DailyReminder.Revised")
    def reminder(self, w, e):
        p = e.payload
        w.upsert(reminders, {"day": p["on"]}, text=p["text"], item_id=p["item_id"],
                 published_at=e.occurred_at)

    @on("ReminderCheckIn.CheckedIn")
    def checked_in(self, w, e):
        p = e.payload
        pending = _bulk_rows(w)
        if pending is not None:  # a group commit in progress: written in bulk, see bulk_checkins
            pending.append(p)
            return
        w.insert(checkins, day=p["on"], person_id=p["person_id"], unit_id=p["unit_id"],
                 checked_at=p["checked_at"])
        w.upsert(streaks, {"person_id": p["person_id"]}, last_day=p["on"], current=p["streak"])


_BULK = "education.bulk_checkins"


def _bulk_rows(w):
    conn = getattr(w, "conn", None)  # the live writer; rebuild / as-of buffers have none
    if conn is None or getattr(w, "planning", False):
        # a write-behind plan renders its rows with the append; if the log moved under it
        # the plan is dropped and the events applied live - collected here as well, they
        # would have been inserted twice (edu_checkins_pkey, a 500 in a slow burst)
        return None
    return conn.info.get(_BULK)


@contextmanager
def bulk_checkins(conn):
    """Within this block, check-ins appended on ``conn`` reach the read model as one
    multi-row insert per table when the block ends - still inside the transaction, so
    still under the log's writer lock and committed with the events.

    Why: the kernel's live writer sends one statement per row, and under load each
    round trip waits milliseconds for the eventlet hub; a group commit of 50 check-ins
    would spend 100 round trips holding the lock. Rebuilds and as-of replays go through
    the ordinary handler (same rows, same values)."""
    conn.info[_BULK] = rows = []
    try:
        yield
        conn.info.pop(_BULK, None)
        if rows:
            conn.execute(checkins.insert(), [
                {"day": p["on"], "person_id": p["person_id"], "unit_id": p["unit_id"],
                 "checked_at": p["checked_at"]} for p in rows])
            ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(streaks)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["person_id"],
                set_={"last_day": ins.excluded.last_day, "current": ins.excluded.current}),
                [{"person_id": p["person_id"], "last_day": p["on"], "current": p["streak"]}
                 for p in rows])
    finally:
        conn.info.pop(_BULK, None)


# -- education records -------------------------------------------------------------------------
sessions = Table(
    "edu_sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("title", String(200), nullable=False),
    Column("organiser_unit_id", String(100), nullable=False, index=True),
    Column("status", String(12), nullable=False),  # planned | held | cancelled
    Column("scheduled_at", String(40), nullable=False),
    Column("held_at", String(40)),
    Column("local_date", String(10), nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("headcount", Integer),
    Column("roster_size", Integer),
    Column("joinable", Boolean, nullable=False),
    Column("attended_unit_ids", JSONText, nullable=False),
    Column("audience", JSONText, nullable=False),
    Column("tags", JSONText, nullable=False),
    Column("materials", JSONText, nullable=False),
    Column("details", JSONText, nullable=False),  # kind-specific: speaker, 议/评, 四共, cases
)

external_refs = Table(
    "edu_external_refs", metadata,
    Column("ref_kind", String(10), primary_key=True),  # session | case
    Column("ref_key", String(201), primary_key=True),  # <origin node>/<record id>
    Column("origin_node", String(100), nullable=False),
    Column("record_id", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("kind", String(40)),
    Column("held_at", String(40)),
    Column("local_date", String(10)),
    Column("period", String(7)),
    Column("organiser", String(200)),
    Column("summary", Text),
    Column("tags", JSONText, nullable=False),
    Column("received_at", String(40), nullable=False),
)

participations = Table(
    "edu_participations", metadata,
    Column("participation_id", String(310), primary_key=True),
    Column("session_key", String(201), nullable=False, index=True),
    Column("session_node", String(100), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("title", String(200), nullable=False),
    Column("external", Boolean, nullable=False),
    Column("status", String(10), nullable=False),  # joined | attended
    Column("headcount", Integer),
    Column("local_date", String(10), nullable=False),
    Column("period", String(7), nullable=False),
)

# 月月行: warning-education sessions credited to a unit in a month (held as organiser,
# attended as an audience unit, or joined from elsewhere)
warning_months = Table(
    "edu_warning_months", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("sessions", Integer, nullable=False),
    Column("first_on", String(10), nullable=False),
)

content = Table(
    "edu_content", metadata,
    Column("item_id", String(100), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("title", String(200), nullable=False),
    Column("text", Text),
    Column("ref", String(1000)),
    Column("tags", JSONText, nullable=False),
    Column("retired", Boolean, nullable=False, default=False),
    Column("added_at", String(40), nullable=False),
)

rotations = Table(
    "edu_rotations", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("week", String(8), primary_key=True),
    Column("starts_on", String(10), nullable=False),
    Column("item_ids", JSONText, nullable=False),
    Column("chosen_by", String(10), nullable=False),
    Column("rotated_at", String(40), nullable=False),
    Column("revision", Integer, nullable=False),
)

shown = Table(
    "edu_shown", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("item_id", String(100), primary_key=True),
    Column("last_week", String(8), nullable=False),
    Column("times", Integer, nullable=False),
)

profiles = Table(
    "edu_unit_profiles", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("tags", JSONText, nullable=False),
)

notices = Table(
    "edu_notices", metadata,
    Column("notice_id", String(100), primary_key=True),
    Column("occasion", String(100)),
    Column("occasion_date", String(10)),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("send_on", String(10), nullable=False, index=True),
    Column("status", String(10), nullable=False),  # scheduled | sent | cancelled
    Column("source", String(10), nullable=False),  # calendar | manual
    Column("sent_at", String(40)),
    Column("recipients", Integer, nullable=False, default=0),
)

receipts = Table(
    "edu_notice_receipts", metadata,
    Column("notice_id", String(100), primary_key=True),
    Column("unit_id", String(100), primary_key=True),
    Column("acknowledged_at", String(40)),
    Column("by_user", String(100)),
)

talks = Table(
    "edu_talks", metadata,
    Column("talk_id", String(120), primary_key=True),
    Column("person_id", String(100), nullable=False),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("new_post", String(200), nullable=False),
    Column("promoted_on", String(10), nullable=False),
    Column("due_on", String(10), nullable=False, index=True),
    Column("status", String(10), nullable=False),  # scheduled | held
    Column("overdue", Boolean, nullable=False, default=False),
    Column("escalation_step", Integer, nullable=False, default=0),
    Column("escalated_to", String(100)),
    Column("held_on", String(10)),
    Column("on_time", Boolean),
    Column("days_late", Integer),
    Column("conducted_by", String(200)),
)

young_cadres = Table(
    "edu_young_cadres", metadata,
    Column("person_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("next_due_on", String(10), nullable=False),
    Column("last_on", String(10)),
    Column("records", Integer, nullable=False, default=0),
    Column("overdue", Boolean, nullable=False, default=False),
)

inbox = Table(
    "edu_inbox", metadata,
    Column("item_id", String(300), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("ref", String(250), nullable=False, index=True),  # "<subject>:<record id>"
    Column("due_on", String(10)),
    Column("status", String(10), nullable=False),  # open | closed
    Column("created_at", String(40), nullable=False),
    Column("closed_at", String(40)),
)

inbox_reads = Table(
    "edu_inbox_reads", metadata,
    Column("user_id", String(100), primary_key=True),
    Column("item_id", String(300), primary_key=True),
    Column("read_at", String(40), nullable=False),
)

indicators = Table(
    "edu_indicators", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("warning_education_held", Boolean, nullable=False),
    Column("checkin_coverage", Float, nullable=False),
    Column("talks_on_time_rate", Float),
    Column("provisional", Boolean, nullable=False, default=False),
    Column("revision", Integer, nullable=False),
    Column("published_at", String(40), nullable=False),
)

district_indicators = Table(
    "edu_district_indicators", metadata,
    Column("node_id", String(100), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("figures", JSONText, nullable=False),
    Column("provisional", Boolean, nullable=False, default=False),
    Column("revision", Integer, nullable=False),
    Column("published_at", String(40), nullable=False),
)


# the log position of the latest entry that counts for each month (Indicators projection)
period_entries = Table(
    "edu_period_entries", metadata,
    Column("period", String(7), primary_key=True),
    Column("last_position", Integer, nullable=False),
)


def _credit_warning(w, unit_id, period, local_date):
    row = w.get(warning_months, unit_id=unit_id, period=period)
    if row is None:
        w.insert(warning_months, unit_id=unit_id, period=period, sessions=1, first_on=local_date)
    else:
        w.update(warning_months, {"unit_id": unit_id, "period": period},
                 sessions=row["sessions"] + 1, first_on=min(row["first_on"], local_date))


def _uncredit_warning(w, unit_id, period):
    row = w.get(warning_months, unit_id=unit_id, period=period)
    if row is None:
        return
    if row["sessions"] <= 1:
        w.delete(warning_months, unit_id=unit_id, period=period)
    else:
        w.update(warning_months, {"unit_id": unit_id, "period": period}, sessions=row["sessions"] - 1)


class Sessions(Projection):
    """Sessions, joins, external references and the 月月行 credit per unit and month."""

    name = "education_sessions"
    tables = (sessions, external_refs, participations, warning_months)

    @on("StudySession.Planned")
    def planned(self, w, e):
        p = e.payload
        w.insert(sessions, session_id=p["session_id"], kind=p["kind"], title=p["title"],
                 organiser_unit_id=p["organiser_unit_id"], status="planned",
                 scheduled_at=p["scheduled_at"], held_at=None, local_date=p["local_date"],
                 period=p["period"], headcount=None, roster_size=None, joinable=p["joinable"],
                 attended_unit_ids=[], audience=p["audience"], tags=p["tags"],
                 materials=p["materials"],
                 details={"speaker": p["speaker"], "case_refs": p["case_refs"]})

    @on("StudySession.Held")
    def held(self, w, e):
        p = e.payload
        row = w.get(sessions, session_id=p["session_id"])
        # a new dict: a rebuild's buffer holds the row's own value, not a copy
        details = dict(row["details"], discussion=p["discussion"], leader_comment=p["leader_comment"],
                       activities=p["activities"], case_analysis=p["case_analysis"])
        w.update(sessions, {"session_id": p["session_id"]}, status="held", held_at=p["held_at"],
                 local_date=p["local_date"], period=p["period"], headcount=p["headcount"],
                 attended_unit_ids=p["attended_unit_ids"],
                 materials=row["materials"] + p["materials"], details=details)
        if p["kind"] == WARNING_EDUCATION:
            for unit_id in p["attended_unit_ids"]:
                _credit_warning(w, unit_id, p["period"], p["local_date"])

    @on("StudySession.RosterRecorded")
    def roster(self, w, e):
        w.update(sessions, {"session_id": e.payload["session_id"]},
                 roster_size=len(e.payload["person_ids"]))

    @on("StudySession.Cancelled")
    def cancelled(self, w, e):
        w.update(sessions, {"session_id": e.payload["session_id"]}, status="cancelled")

    @on("SessionParticipation.Joined")
    def joined(self, w, e):
        p = e.payload
        w.insert(participations, participation_id=p["participation_id"],
                 session_key=p["session_key"], session_node=p["session_node"],
                 session_id=p["session_id"], unit_id=p["unit_id"], kind=p["kind"],
                 title=p["title"], external=p["external"], status="joined", headcount=None,
                 local_date=p["local_date"], period=p["period"])

    @on("SessionParticipation.Attended")
    def attended(self, w, e):
        p = e.payload
        w.update(participations, {"participation_id": p["participation_id"]}, status="attended",
                 headcount=p["headcount"], local_date=p["local_date"], period=p["period"])
        if p["kind"] == WARNING_EDUCATION:
            _credit_warning(w, p["unit_id"], p["period"], p["local_date"])

    @on("SessionParticipation.Corrected")
    def participation_corrected(self, w, e):
        p = e.payload
        row = w.get(participations, participation_id=p["participation_id"])
        if row is None:
            return
        was = row["status"] == "attended"
        w.update(participations, {"participation_id": p["participation_id"]},
                 status="attended" if p["attended"] else "joined",
                 headcount=p["headcount"] if p["attended"] else None)
        if p["kind"] == WARNING_EDUCATION and was != p["attended"]:
            if p["attended"]:
                _credit_warning(w, p["unit_id"], p["period"], p["local_date"])
            else:
                _uncredit_warning(w, p["unit_id"], p["period"])

    @on("ExternalSession.Registered", "ExternalSession.Updated",
        "ExternalCase.Registered", "ExternalCase.Updated")
    def external(self, w, e):
        p = e.payload
        kind = "session" if e.event_type.startswith("ExternalSession") else "case"
        w.upsert(external_refs, {"ref_kind": kind, "ref_key": p["key"]},
                 origin_node=p["origin_node"], record_id=p["record_id"], title=p["title"],
                 kind=p.get("kind"), held_at=p.get("held_at"), local_date=p.get("local_date"),
                 period=p.get("period"), organiser=p.get("organiser"), summary=p.get("summary"),
                 tags=p["tags"], received_at=e.occurred_at)

    @on("SharedCase.Recorded")
    def shared_case(self, w, e):
        """A case of 案例联编 on offer (or taken off it: withdrawn, back to a draft)."""
        p = e.payload
        key = {"ref_kind": "case", "ref_key": p["case_id"]}
        if not p["offered"]:
            if w.get(external_refs, **key) is not None:
                w.delete(external_refs, **key)
            return
        w.upsert(external_refs, key, origin_node=p["origin_node"],
                 record_id=p["case_id"].split("/", 1)[1], title=p["title"], kind=None,
                 held_at=None, local_date=None, period=None, organiser=None,
                 summary=p["summary"], tags=p["tags"], received_at=e.occurred_at)


class Library(Projection):
    """The content library, unit profiles, and what each unit showed each week."""

    name = "education_library"
    tables = (content, rotations, shown, profiles)

    @on("ContentItem.Added")
    def content_added(self, w, e):
        p = e.payload
        w.insert(content, item_id=p["item_id"], kind=p["kind"], title=p["title"], text=p["text"],
                 ref=p["ref"], tags=p["tags"], retired=False, added_at=e.occurred_at)

    @on("ContentItem.Retagged")
    def content_retagged(self, w, e):
        w.update(content, {"item_id": e.payload["item_id"]}, tags=e.payload["tags"])

    @on("ContentItem.Retired")
    def content_retired(self, w, e):
        w.update(content, {"item_id": e.payload["item_id"]}, retired=True)

    @on("PublicityRotation.Rotated")
    def rotated(self, w, e):
        p = e.payload
        key = {"unit_id": p["unit_id"], "week": p["week"]}
        row = w.get(rotations, **key)
        values = dict(starts_on=p["starts_on"], item_ids=p["item_ids"],
                      chosen_by=p["chosen_by"], rotated_at=e.occurred_at)
        if row is None:
            w.insert(rotations, **key, revision=1, **values)
        else:
            w.update(rotations, key, revision=row["revision"] + 1, **values)
        for item_id in p["item_ids"]:
            s = w.get(shown, unit_id=p["unit_id"], item_id=item_id)
            if s is None:
                w.insert(shown, unit_id=p["unit_id"], item_id=item_id, last_week=p["week"], times=1)
            elif s["last_week"] != p["week"]:
                w.update(shown, {"unit_id": p["unit_id"], "item_id": item_id},
                         last_week=max(s["last_week"], p["week"]), times=s["times"] + 1)

    @on("UnitProfile.Set")
    def profile(self, w, e):
        p = e.payload
        w.upsert(profiles, {"unit_id": p["unit_id"]}, tags=normalise_tags(p))


class Notices(Projection):
    name = "education_notices"
    tables = (notices, receipts)

    @on("IntegrityNotice.Scheduled")
    def scheduled(self, w, e):
        p = e.payload
        w.insert(notices, notice_id=p["notice_id"], occasion=p["occasion"],
                 occasion_date=p["occasion_date"], title=p["title"], body=p["body"],
                 send_on=p["send_on"], status="scheduled", source=p["source"], sent_at=None,
                 recipients=0)

    @on("IntegrityNotice.Sent")
    def sent(self, w, e):
        p = e.payload
        w.update(notices, {"notice_id": p["notice_id"]}, status="sent", sent_at=p["sent_at"],
                 recipients=len(p["unit_ids"]))
        for unit_id in p["unit_ids"]:
            w.insert(receipts, notice_id=p["notice_id"], unit_id=unit_id, acknowledged_at=None,
                     by_user=None)

    @on("IntegrityNotice.Cancelled")
    def cancelled(self, w, e):
        w.update(notices, {"notice_id": e.payload["notice_id"]}, status="cancelled")

    @on("NoticeReceipt.Acknowledged")
    def acknowledged(self, w, e):
        p = e.payload
        w.update(receipts, {"notice_id": p["notice_id"], "unit_id": p["unit_id"]},
                 acknowledged_at=p["acknowledged_at"], by_user=p["by"])


class Talks(Projection):
    """廉政谈话 of promoted cadres and the young cadres' programme."""

    name = "education_talks"
    tables = (talks, young_cadres)

    @on("IntegrityTalk.Scheduled")
    def scheduled(self, w, e):
        p = e.payload
        w.insert(talks, talk_id=p["talk_id"], person_id=p["person_id"], unit_id=p["unit_id"],
                 new_post=p["new_post"], promoted_on=p["promoted_on"], due_on=p["due_on"],
                 status="scheduled", overdue=False, escalation_step=0, escalated_to=None,
                 held_on=None, on_time=None, days_late=None, conducted_by=None)

    @on("IntegrityTalk.BecameOverdue")
    def overdue(self, w, e):
        w.update(talks, {"talk_id": e.payload["talk_id"]}, overdue=True)

    @on("IntegrityTalk.Escalated")
    def escalated(self, w, e):
        p = e.payload
        w.update(talks, {"talk_id": p["talk_id"]}, escalation_step=p["step"],
                 escalated_to=p["notify_unit_id"])

    @on("IntegrityTalk.Held")
    def held(self, w, e):
        p = e.payload
        w.update(talks, {"talk_id": p["talk_id"]}, status="held", held_on=p["held_on"],
                 on_time=p["on_time"], days_late=p["days_late"], conducted_by=p["conducted_by"])

    @on("YoungCadreProgramme.Enrolled")
    def enrolled(self, w, e):
        p = e.payload
        w.insert(young_cadres, person_id=p["person_id"], unit_id=p["unit_id"],
                 next_due_on=p["next_due_on"], last_on=None, records=0, overdue=False)

    @on("YoungCadreProgramme.EducationRecorded")
    def recorded(self, w, e):
        p = e.payload
        row = w.get(young_cadres, person_id=p["person_id"])
        w.update(young_cadres, {"person_id": p["person_id"]}, next_due_on=p["next_due_on"],
                 last_on=max(row["last_on"] or p["on"], p["on"]), records=row["records"] + 1,
                 overdue=False)

    @on("YoungCadreProgramme.BecameOverdue")
    def young_overdue(self, w, e):
        w.update(young_cadres, {"person_id": e.payload["person_id"]}, overdue=True)

    @on("YoungCadreProgramme.Moved")
    def moved(self, w, e):
        w.update(young_cadres, {"person_id": e.payload["person_id"]}, unit_id=e.payload["unit_id"])


def talk_item_id(talk_id: str) -> str:
    return "talk:%s" % talk_id


def escalation_item_id(talk_id: str, step: int) -> str:
    return "talk:%s:step%d" % (talk_id, step)


def _open_item(w, item_id, unit_id, kind, title, ref, due_on, at):
    w.upsert(inbox, {"item_id": item_id}, unit_id=unit_id, kind=kind, title=title[:300],
             ref=ref, due_on=due_on, status="open", created_at=at, closed_at=None)


def _close(w, at, **where):
    """Close the open items matching ``where``: one item by id (a keyed read, so a rebuild
    stays linear), or every item of a record by ``ref``."""
    if set(where) == {"item_id"}:
        row = w.get(inbox, item_id=where["item_id"])
        rows = [row] if row else []
    else:
        rows = w.find(inbox, **where)
    for row in rows:
        if row["status"] == "open":
            w.update(inbox, {"item_id": row["item_id"]}, status="closed", closed_at=at)


class Inbox(Projection):
    """Each unit's inbox: what is new (notices, this week's publicity), due (talks) and
    overdue (talks and their escalations, young cadres, a missed 月月行). Items close
    when the record they point at is done. ``ref`` names the record ("talk:<id>"), so a
    record's items are found by it; the projection keeps to its own tables and so
    rebuilds on its own."""

    name = "education_inbox"
    tables = (inbox, inbox_reads)

    @on("IntegrityNotice.Sent")
    def notice_sent(self, w, e):
        p = e.payload
        for unit_id in p["unit_ids"]:
            _open_item(w, "notice:%s:%s" % (p["notice_id"], unit_id), unit_id, "notice",
                       "廉洁通知: %s" % p["title"], "notice:%s" % p["notice_id"], None, e.occurred_at)

    @on("NoticeReceipt.Acknowledged")
    def notice_acknowledged(self, w, e):
        p = e.payload
        _close(w, e.occurred_at, item_id="notice:%s:%s" % (p["notice_id"], p["unit_id"]))

    @on("CaseBulletin.Issued")
    def case_bulletin_issued(self, w, e):
        """典型案例通报: each recipient unit owes its study receipt (``Practices``)."""
        p = e.payload
        for unit_id in p["unit_ids"]:
            _open_item(w, "case:%s:%s" % (p["bulletin_id"], unit_id), unit_id, "case_bulletin",
                       "典型案例通报: %s" % p["title"], "case:%s" % p["bulletin_id"], p.get("due_on"),
                       e.occurred_at)

    @on("CaseStudyReceipt.Studied")
    def case_studied(self, w, e):
        p = e.payload
        _close(w, e.occurred_at, item_id="case:%s:%s" % (p["bulletin_id"], p["unit_id"]))

    @on("IntegrityTalk.Scheduled")
    def talk_scheduled(self, w, e):
        p = e.payload
        _open_item(w, talk_item_id(p["talk_id"]), p["unit_id"], "talk_due",
                   "新提拔干部廉政谈话 (%s, %s) 应于 %s 前完成" % (p["person_id"], p["new_post"], p["due_on"]),
                   "talk:%s" % p["talk_id"], p["due_on"], e.occurred_at)

    @on("IntegrityTalk.BecameOverdue")
    def talk_overdue(self, w, e):
        w.update(inbox, {"item_id": talk_item_id(e.payload["talk_id"])}, kind="talk_overdue")

    @on("IntegrityTalk.Escalated")
    def talk_escalated(self, w, e):
        p = e.payload
        title = "廉政谈话逾期 %d 天 (%s, %s): %s" % (p["overdue_days"], p["person_id"], p["unit_id"], p["label"])
        if p["notify_unit_id"] == p["unit_id"]:
            # a rung addressed to the talk's own unit sharpens the item it already has
            w.update(inbox, {"item_id": talk_item_id(p["talk_id"])}, kind="talk_overdue", title=title)
            return
        _open_item(w, escalation_item_id(p["talk_id"], p["step"]), p["notify_unit_id"],
                   "talk_escalated", title, "talk:%s" % p["talk_id"], p["due_on"], e.occurred_at)

    @on("IntegrityTalk.Held")
    def talk_held(self, w, e):
        _close(w, e.occurred_at, ref="talk:%s" % e.payload["talk_id"])

    @on("YoungCadreProgramme.BecameOverdue")
    def young_overdue(self, w, e):
        p = e.payload
        _open_item(w, "young:%s:%s" % (p["person_id"], p["due_on"]), p["unit_id"],
                   "young_cadre_overdue",
                   "年轻干部 %s 的定期纪律和廉政教育已逾期 (应于 %s 前)" % (p["person_id"], p["due_on"]),
                   "young:%s" % p["person_id"], p["due_on"], e.occurred_at)

    @on("YoungCadreProgramme.EducationRecorded")
    def young_recorded(self, w, e):
        _close(w, e.occurred_at, ref="young:%s" % e.payload["person_id"])

    @on("YoungCadreProgramme.Moved")
    def young_moved(self, w, e):
        p = e.payload
        for row in w.find(inbox, ref="young:%s" % p["person_id"]):
            if row["status"] == "open":
                w.update(inbox, {"item_id": row["item_id"]}, unit_id=p["unit_id"])

    @on("PublicityRotation.Rotated")
    def publicity(self, w, e):
        p = e.payload
        previous = iso_week(parse_date(p["starts_on"]) - timedelta(days=7))
        _close(w, e.occurred_at, item_id="publicity:%s:%s" % (p["unit_id"], previous))
        _open_item(w, "publicity:%s:%s" % (p["unit_id"], p["week"]), p["unit_id"], "publicity",
                   "廉政宣传周更新 %s: 请更换桌面短句与屏保" % p["week"],
                   "publicity:%s/%s" % (p["unit_id"], p["week"]), None, e.occurred_at)

    @on("EducationIndicators.Published")
    def indicators(self, w, e):
        p = e.payload
        item_id = "warning:%s:%s" % (p["unit_id"], p["period"])
        if p["warning_education_held"]:
            _close(w, e.occurred_at, item_id=item_id)
        elif not p.get("provisional"):  # a month still open for entries has missed nothing yet
            _open_item(w, item_id, p["unit_id"], "warning_education_missed",
                       "%s 未开展警示教育 (月月行)" % p["period"],
                       "warning:%s/%s" % (p["unit_id"], p["period"]), None, e.occurred_at)

    @on("UserInbox.ItemsRead")
    def items_read(self, w, e):
        p = e.payload
        for item_id in p["item_ids"]:
            # the first reading is the one that counts; reading again changes nothing
            if w.get(inbox_reads, user_id=p["user_id"], item_id=item_id) is None:
                w.insert(inbox_reads, user_id=p["user_id"], item_id=item_id, read_at=p["read_at"])


class Indicators(Projection):
    """What was published, month by month (the live figures are computed by queries)."""

    name = "education_indicators"
    version = 2  # v2: provisional (issue 10 #13)
    tables = (indicators, district_indicators, period_entries)

    @on("EducationIndicators.Published")
    def published(self, w, e):
        p = e.payload
        key = {"unit_id": p["unit_id"], "period": p["period"]}
        row = w.get(indicators, **key)
        values = dict(warning_education_held=p["warning_education_held"],
                      checkin_coverage=p["checkin_coverage"],
                      talks_on_time_rate=p["talks_on_time_rate"],
                      provisional=bool(p.get("provisional")), published_at=e.occurred_at)
        if row is None:
            w.insert(indicators, **key, revision=1, **values)
        else:
            w.update(indicators, key, revision=row["revision"] + 1, **values)

    @on("DistrictEducationIndicators.Published")
    def district_published(self, w, e):
        p = e.payload
        key = {"node_id": p["node_id"], "period": p["period"]}
        row = w.get(district_indicators, **key)
        figures = {k: v for k, v in p.items() if k not in ("node_id", "period")}
        provisional = bool(p.get("provisional"))
        if row is None:
            w.insert(district_indicators, **key, figures=figures, provisional=provisional,
                     revision=1, published_at=e.occurred_at)
        else:
            w.update(district_indicators, key, figures=figures, provisional=provisional,
                     revision=row["revision"] + 1, published_at=e.occurred_at)

    # entries that change a month's figures, by the month they count for: a late one
    # (recorded after the month was published) makes the routine publish it again
    @on("StudySession.Held", "SessionParticipation.Attended")
    def entry(self, w, e):
        self._entry(w, e.payload["period"], e.position)

    @on("IntegrityTalk.Held")
    def talk_entry(self, w, e):
        self._entry(w, e.payload["due_on"][:7], e.position)

    @staticmethod
    def _entry(w, period, position):
        w.upsert(period_entries, {"period": period}, last_position=position)


# supervision's 廉政风险点台账, mirrored from its events (domain.RiskPointMirror)
risk_register = Table(
    "edu_risk_register", metadata,
    Column("risk_point_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("name", Text),
    Column("category", String(30)),
    Column("post", String(200)),
    Column("active", Boolean, nullable=False),
)


class RiskRegister(Projection):
    """The risk points supervision has identified and not retired: what tailoring fits
    material to (no second, hand-typed list)."""

    name = "education_risk_register"
    tables = (risk_register,)

    @on("RiskPointMirror.Recorded")
    def recorded(self, w, e):
        p = e.payload
        w.upsert(risk_register, {"risk_point_id": p["risk_point_id"]}, unit_id=p["unit_id"],
                 name=p["name"], category=p["category"], post=p["post"], active=p["active"])


# sessions shared with other nodes (上下联学 through the exchange) and their attendance there
shared_sessions = Table(
    "edu_shared_sessions", metadata,
    Column("slug", String(100), primary_key=True),   # the exchange record "<this node>/<slug>"
    Column("session_id", String(100), nullable=False, index=True),
    Column("nodes", JSONText, nullable=False),
)

node_attendance = Table(
    "edu_node_attendance", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("node", String(100), primary_key=True),
    Column("units", JSONText, nullable=False),           # [{unit_id, unit_name, attendees}]
    Column("attendees", Integer, nullable=False),
    Column("reported_at", String(40), nullable=False),
)


class SharedSessions(Projection):
    """Sessions this node organised for other nodes, and who came on each of them."""

    name = "education_shared_sessions"
    tables = (shared_sessions, node_attendance)

    @on("StudySession.SharedWithNodes")
    def shared(self, w, e):
        p = e.payload
        w.upsert(shared_sessions, {"slug": p["slug"]}, session_id=p["session_id"], nodes=p["nodes"])

    @on("StudySession.NodeAttendanceReported")
    def reported(self, w, e):
        p = e.payload
        w.upsert(node_attendance, {"session_id": p["session_id"], "node": p["node"]},
                 units=p["units"], attendees=p["attendees"], reported_at=e.occurred_at)


# -- 清廉机关实践: 献一策 (suggestions, their handling and adoption) and 典型案例通报 (typical
# cases pushed to a subtree, with receipts) ---------------------------------------------------
suggestions = Table(
    "edu_suggestions", metadata,
    Column("suggestion_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("proposer_id", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("content", Text, nullable=False),
    Column("submitted_on", String(10), nullable=False),
    Column("year", Integer, nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("handler", String(100)),
    Column("accepted_on", String(10)),
    Column("progress", Text),            # the latest 办理 note
    Column("progress_on", String(10)),
    Column("notes", Integer, nullable=False, default=0),
    Column("reply", Text),
    Column("outcome", String(20)),
    Column("answered_on", String(10)),
)

bulletins = Table(
    "edu_case_bulletins", metadata,
    Column("bulletin_id", String(100), primary_key=True),
    Column("issuer_unit_id", String(100), nullable=False),
    Column("scope_unit_id", String(100), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("requirements", Text, nullable=False),
    Column("issued_on", String(10), nullable=False),
    Column("due_on", String(10)),
    Column("case_ref", String(200)),
    Column("recipients", Integer, nullable=False),
)

bulletin_receipts = Table(
    "edu_case_receipts", metadata,
    Column("bulletin_id", String(100), primary_key=True),
    Column("unit_id", String(100), primary_key=True),
    Column("studied_on", String(10)),
    Column("headcount", Integer),
    Column("note", Text),
    Column("by_user", String(100)),
)


class Practices(Projection):
    name = "education_practices"
    tables = (suggestions, bulletins, bulletin_receipts)

    # -- 献一策 ---------------------------------------------------------------------------------
    @on("Suggestion.Submitted")
    def suggestion_submitted(self, w, e):
        p = e.payload
        w.insert(suggestions, suggestion_id=p["suggestion_id"], unit_id=p["unit_id"],
                 proposer_id=p["proposer_id"], title=p["title"], content=p["content"],
                 submitted_on=p["submitted_on"], year=p["year"], status="submitted", notes=0)

    @on("Suggestion.Accepted")
    def suggestion_accepted(self, w, e):
        p = e.payload
        w.update(suggestions, {"suggestion_id": p["suggestion_id"]}, status="accepted",
                 handler=p["handler"], accepted_on=p["accepted_on"])

    @on("Suggestion.Progressed")
    def suggestion_progressed(self, w, e):
        p = e.payload
        row = w.get(suggestions, suggestion_id=p["suggestion_id"])
        w.update(suggestions, {"suggestion_id": p["suggestion_id"]}, status="in_progress",
                 progress=p["note"], progress_on=p["on"], notes=(row["notes"] if row else 0) + 1)

    @on("Suggestion.Answered")
    def suggestion_answered(self, w, e):
        p = e.payload
        w.update(suggestions, {"suggestion_id": p["suggestion_id"]}, status="answered",
                 reply=p["reply"], outcome=p["outcome"], answered_on=p["answered_on"])

    # -- 典型案例通报 ------------------------------------------------------------------------------
    @on("CaseBulletin.Issued")
    def bulletin_issued(self, w, e):
        p = e.payload
        w.insert(bulletins, bulletin_id=p["bulletin_id"], issuer_unit_id=p["issuer_unit_id"],
                 scope_unit_id=p["scope_unit_id"], title=p["title"], summary=p["summary"],
                 requirements=p["requirements"], issued_on=p["issued_on"], due_on=p.get("due_on"),
                 case_ref=p.get("case_ref"), recipients=len(p["unit_ids"]))
        for unit_id in p["unit_ids"]:
            w.insert(bulletin_receipts, bulletin_id=p["bulletin_id"], unit_id=unit_id)

    @on("CaseStudyReceipt.Studied")
    def bulletin_studied(self, w, e):
        p = e.payload
        w.update(bulletin_receipts, {"bulletin_id": p["bulletin_id"], "unit_id": p["unit_id"]},
                 studied_on=p["studied_on"], headcount=p["headcount"], note=p["note"], by_user=p["by"])


PROJECTIONS = [CheckInBoard(), Sessions(), Library(), Notices(), Talks(), Inbox(), Indicators(),
               RiskRegister(), SharedSessions(), Practices()]
