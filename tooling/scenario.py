"""A district's year, seeded and deterministic: what ``qinglian demo --districts N``
loads into each district, and what the scale suite can load into a node.

``Year(node_id, seed).lives()`` yields, service by service, every aggregate the year
makes - made by the services' own domain objects (``Unit.register``,
``Finding.record`` → ``Rectification.open`` → evidence → verification,
``RiskPoint.identify`` → ``assess`` → controls, ``Inspection.plan`` → ``score``,
``StudySession.plan`` → ``hold``, ``ReminderCheckIn.check_in``, ``Experience.draft`` →
``share`` …), so every payload has the real shape and passes its declared fields. The
same ``(node_id, seed, size)`` gives the same year, to the byte (``fingerprint``).

A full year (``Size()``): 300 units, 3,000 members, per unit 2 inspections, 5 findings
and their rectifications, 10 risk points and 12 study sessions a year, every member's
daily check-in on 9 working days in 10, and the node's shared records (experiences,
cases, joint activities, joint problems: ``shared`` a year) and every unit's monthly
figures published upward (``IndicatorReport``, shared with the city) - about 720,000
events, most of them check-ins. ``Size.small()`` is the tests' few units and days.

``load(year, config)`` writes it into a node: each service's events appended to its
log in transactions of ``CHUNK`` events, the exchange's shared records signed into its
outbox as ``save_and_share`` does (so the node publishes them when its service
starts), then each service's read models built from its log in one pass
(``rebuild_many``, as ``qinglian projections rebuild`` builds them).
Each service keeps its own mirror of the unit tree (and education its member mirror),
as the units service's events would have made them.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta

YEAR = date(2025, 1, 1)
CHUNK = 2000                     # events per loading transaction
SHARED_KINDS = ("experience", "case", "activity", "problem")


@dataclass(frozen=True)
class Size:
    units: int = 300
    members: int = 3000
    days: int = 365
    inspections_per_unit: int = 2
    findings_per_unit: int = 5
    risk_points_per_unit: int = 10
    sessions_per_unit: int = 12
    checkin_share: float = 0.9   # of members, each working day
    shared: int = 600            # shared records a year (experiences, cases, activities, problems)

    @classmethod
    def small(cls) -> "Size":
        return cls(units=4, members=12, days=45, inspections_per_unit=1, findings_per_unit=2,
                   risk_points_per_unit=1, sessions_per_unit=1, shared=8)

    def scaled(self, share: float) -> "Size":
        """The year with every count times ``share`` (at least one of each)."""
        if not 0 < share <= 1:
            raise ValueError("规模比例须在 0 到 1 之间（不含 0），收到 %r" % share)
        return Size(units=max(2, round(self.units * share)),
                    members=max(4, round(self.members * share)), days=self.days,
                    inspections_per_unit=self.inspections_per_unit,
                    findings_per_unit=self.findings_per_unit,
                    risk_points_per_unit=self.risk_points_per_unit,
                    sessions_per_unit=self.sessions_per_unit, checkin_share=self.checkin_share,
                    shared=max(len(SHARED_KINDS), round(self.shared * share)))


class Year:
    """One district's year (module doc). ``lives()`` yields (service, aggregate) with
    the aggregate's events still pending, in the order they would be recorded."""

    def __init__(self, node_id: str, seed: int = 13, size: Size | None = None):
        self.node_id, self.seed, self.size = node_id, seed, size or Size()
        self.units = ["%s-u%03d" % (node_id, i) for i in range(self.size.units)]
        self.root = "%s-gw" % node_id

    def day(self, d: int) -> str:
        return (YEAR + timedelta(days=d)).isoformat()

    def working_days(self) -> list[int]:
        return [d for d in range(self.size.days) if (YEAR + timedelta(days=d)).weekday() < 5]

    def lives(self):
        rng = random.Random("%s/%d" % (self.node_id, self.seed))
        yield from self._tree()
        yield from self._supervision(rng)
        yield from self._education(rng)
        yield from self._exchange(rng)

    # -- the units service and every service's mirror of its tree ----------------------------
    def _tree(self):
        from services.units.domain import Person, Unit
        from shared.unittree import UnitMirror
        tree = [(self.root, "%s区直机关工委" % self.node_id, "district_authority", "district", None)] + [
            (u, "单位%s" % u[-3:], "government_dept", "unit", self.root) for u in self.units]
        for unit_id, name, kind, level, parent in tree:
            yield "units", Unit.register(unit_id, name, kind, level, parent)
            for service in ("supervision", "education", "exchange"):
                m = UnitMirror(unit_id)
                m.trigger(UnitMirror.Registered, unit_id=unit_id, name=name, kind=kind,
                          level=level, parent_id=parent)
                yield service, m
        for i, (pid, unit) in enumerate(self.members()):
            yield "units", Person.register(pid, "成员%05d" % i, unit, "科员", young_cadre=i % 7 == 0)

    def members(self) -> list[tuple[str, str]]:
        return [("%s-p%05d" % (self.node_id, i), self.units[i % len(self.units)])
                for i in range(self.size.members)]

    # -- supervision: inspections, findings and rectifications, risk points ----------------------
    def _supervision(self, rng):
        from services.supervision.domain import (
            DEFAULT_CRITERIA, RESPONSIBLE_ROLES, RISK_CATEGORIES, SEVERITIES, Checklist, Finding,
            Inspection, Rectification, RiskPoint,
        )
        from services.supervision.settings import Settings
        s, last = self.size, self.size.days - 1
        rules = Settings().risk_rules()
        checklist = Checklist.default()
        yield "supervision", checklist
        for n, unit in enumerate(self.units):
            for k in range(s.inspections_per_unit):
                d = rng.randint(0, last)
                ins = Inspection.plan("ins-%s-%d" % (unit, k), unit, "清廉机关建设专项督导",
                                      self.day(d), checklist, inspectors=["insp-1", "insp-2"])
                ins.score([{"criterion": c["code"], "score": c["max_score"] - (j % 2) * 2,
                            "note": "台账不全" if j % 2 else ""}
                           for j, c in enumerate(DEFAULT_CRITERIA)])
                yield "supervision", ins
            for k in range(s.findings_per_unit):
                d = rng.randint(0, last)
                f = Finding.record("f-%s-%d" % (unit, k), unit, "department_to_department",
                                   "公务接待、差旅报销或台账管理不规范（%d）" % k,
                                   rng.choice(list(SEVERITIES)), self.day(d))
                yield "supervision", f
                r = Rectification.open(f, unit, rng.choice(list(RESPONSIBLE_ROLES)),
                                       self.day(d + rng.randint(10, 45)), self.day(d),
                                       "限期整改并报送佐证材料")
                if d + 20 <= last:
                    sha = hashlib.sha256(("%s/%d" % (unit, k)).encode()).hexdigest()
                    r.submit_evidence([{"path": "%s/%s.pdf" % (sha[:2], sha), "sha256": sha,
                                        "size_bytes": 100_000 + n, "description": "整改报告"}],
                                      "已整改", self.day(d + 15), "ua-%s" % unit)
                    r.verify(self.day(d + 20), "insp-2", "核查属实")
                yield "supervision", r
            for k in range(s.risk_points_per_unit):
                d = rng.randint(0, last)
                p = RiskPoint.identify("rp-%s-%d" % (unit, k), unit, "审批环节自由裁量空间大（%d）" % k,
                                       rng.choice(list(RISK_CATEGORIES)), post="科员岗",
                                       identified_on=self.day(d))
                p.assess(rng.randint(1, 5), rng.randint(1, 5), rules, self.day(d), "insp-1")
                p.add_control("c0", "落实双人审批、全程留痕", "科长", self.day(d + 90), self.day(d))
                yield "supervision", p

    # -- education: members, study sessions, daily check-ins -----------------------------------------
    def _education(self, rng):
        from services.education.domain import MemberMirror, ReminderCheckIn, StudySession
        s, last = self.size, self.size.days - 1
        members = self.members()
        for pid, unit in members:
            m = MemberMirror.blank(pid)
            m.merge("Registered", 1, {"unit_id": unit, "post": "科员", "young_cadre": False})
            yield "education", m
        for unit in self.units:
            for k in range(s.sessions_per_unit):
                d = min(last, k * 30 + rng.randint(0, 20))
                on = self.day(d)
                sess = StudySession.plan("ss-%s-%d" % (unit, k), "theme_joint_study",
                                         "主题联学：廉洁从政（%d）" % k, unit, on + "T01:00:00Z", on,
                                         {"unit_ids": [unit], "roles": [], "posts": []},
                                         {"business_types": ["廉洁从政"]}, [], False)
                sess.hold(on + "T02:00:00Z", on, YEAR + timedelta(days=last), rng.randint(8, 30), [unit])
                yield "education", sess
        streak: dict[str, int] = {}
        previous: dict[str, int] = {}
        for d in self.working_days():
            on = self.day(d)
            for pid, unit in members:
                if rng.random() >= s.checkin_share:
                    continue
                # the streak counts calendar days: a weekend breaks it (education.domain)
                streak[pid] = streak.get(pid, 0) + 1 if previous.get(pid) == d - 1 else 1
                previous[pid] = d
                yield "education", ReminderCheckIn.check_in(
                    pid, unit, on, on + "T00:%02d:00Z" % (rng.randint(0, 59)), streak[pid], pid)

    # -- exchange: shared records, and the figures published upward --------------------------------
    def _exchange(self, rng):
        from services.exchange.domain import (
            Case, Experience, IndicatorReport, JointActivity, JointProblem, derived_id, record_id,
        )
        from services.supervision.domain import DISTRICT_FIGURES, UNIT_FIGURES
        s, last = self.size, self.size.days - 1
        node = self.node_id
        for k in range(s.shared):
            unit = self.units[k % len(self.units)]
            name = "单位%s" % unit[-3:]
            d = min(last, int(k * s.days / s.shared))
            kind = SHARED_KINDS[k % len(SHARED_KINDS)]
            rid = record_id(node, "%s-%05d" % (kind, k))
            if kind == "experience":
                rec = Experience.draft(rid, {
                    "unit_id": unit, "unit_name": name, "title": "经验做法 %05d" % k,
                    "summary": "聚焦主责主业，推动清廉机关建设与业务深度融合。",
                    "body": "示范点建设经验做法：台账规范、流程公开、群众评议。" * 3,
                    "business_type": "示范点建设", "topics": ["示范点"], "attachments": []})
            elif kind == "case":
                rec = Case.compile(rid, {
                    "unit_id": unit, "unit_name": name, "title": "典型案例 %05d" % k,
                    "category": "四风", "summary": "违规发放津补贴问题。",
                    "facts": "某单位以加班费名义违规发放津补贴。", "analysis": "制度执行不严，监督缺位。",
                    "lessons": ["严格执行财务制度", "加强日常监督"], "tags": ["四风"]})
            elif kind == "activity":
                start = self.day(d) + "T01:00:00Z"
                rec = JointActivity.plan(rid, {
                    "unit_id": unit, "unit_name": name, "title": "联办专题党日 %05d" % k,
                    "theme": "专题党日", "description": "共学、共评、共建、共享。",
                    "starts_at": start, "ends_at": self.day(d) + "T03:00:00Z",
                    "location": "区党员活动中心", "invited_nodes": []})
            else:
                rec = JointProblem.post(rid, {
                    "unit_id": unit, "unit_name": name, "title": "基层难题 %05d" % k,
                    "context": "基层站所台账多、报表多，如何减负增效。",
                    "deadline": self.day(d + 30), "tags": ["基层减负"]}, self.day(d))
            rec.share("all", [])
            yield "exchange", rec
        months = sorted({self.day(d)[:7] for d in range(s.days)})
        for period in months:
            for unit in self.units:
                figures = {f: float(rng.randint(0, 40)) for f in UNIT_FIGURES}
                rid = derived_id(node, "indicators", "supervision", "unit", unit, period)
                yield "exchange", IndicatorReport.record(rid, "city", "supervision", "unit", unit,
                                                         "单位%s" % unit[-3:], period, figures)
            rid = derived_id(node, "indicators", "supervision", "district", "", period)
            yield "exchange", IndicatorReport.record(
                rid, "city", "supervision", "district", None, None, period,
                {f: round(rng.uniform(0, 100), 2) for f in DISTRICT_FIGURES})

    # -- what it is, and how much -----------------------------------------------------------------
    def fingerprint(self) -> tuple[str, dict]:
        """(SHA-256 of every event of the year in order, events per service and type)."""
        h = hashlib.sha256()
        counts: dict[str, int] = {}
        for service, agg in self.lives():
            for ev in agg.collect_events():
                key = "%s %s" % (service, ev.event_type)
                counts[key] = counts.get(key, 0) + 1
                h.update(("%s|%s|%s|" % (service, agg.stream_id, ev.event_type)).encode())
                h.update(json.dumps(ev.data(), sort_keys=True, ensure_ascii=False).encode())
        return h.hexdigest(), counts


def load(year: Year, node_config: dict, services=("units", "supervision", "education", "exchange"),
         chunk: int = CHUNK) -> dict[str, int]:
    """Append the year to the node's services' logs (module doc); returns events per
    service. ``node_config``: the node's settings (``NODE_ID``, ``QINGLIAN_VAR``, the
    database URLs), as its services get them; its key and registry must exist (the
    exchange signs with the key). The services should not be running meanwhile."""
    from shared import config, registry
    from shared.auth import Actor
    from shared.db import make_engine
    from shared.events import NewEvent
    from shared.projections import rebuild_many
    from shared.uow import Runtime
    runtimes, feds, projections = {}, {}, {}
    for service in services:
        app = registry.application(service)
        extra = ()
        if service == "exchange":
            from services.exchange.federation import metadata as federation_metadata
            extra = (federation_metadata,)
        engine = make_engine(config.database_url(service, node_config))
        Runtime(engine, app.projections, year.node_id, service, extra_metadata=extra).create_schema()
        # appended without the read models, which are then built in one pass (below)
        runtimes[service] = Runtime(engine, (), year.node_id, service)
        projections[service] = app.projections
    if "exchange" in services:
        feds["exchange"] = _federation(runtimes["exchange"], node_config)
    actor = Actor("scenario", ("node-admin",), None, year.node_id)
    counts = {s: 0 for s in services}
    pending: dict[str, list] = {s: [] for s in services}

    def flush(service):
        aggs, pending[service] = pending[service], []
        rt = runtimes[service]
        with rt.unit_of_work(actor) as uow:
            meta = uow.metadata()
            new = [NewEvent(a.stream_id, a.stream_type, i + 1, ev.event_type, ev.schema_version,
                            ev.data(), meta)
                   for a in aggs for i, ev in enumerate(a.collect_events())]
            stored = uow.append_events(new)
            if service in feds:
                feds[service].stage(uow, stored)
        counts[service] += len(new)

    sizes = {s: 0 for s in services}
    for service, agg in year.lives():
        if service not in pending:
            agg.collect_events()
            continue
        pending[service].append(agg)
        sizes[service] += len(agg.pending_events)
        if sizes[service] >= chunk:
            flush(service)
            sizes[service] = 0
    for service in services:
        if pending[service]:
            flush(service)
    for service, rt in runtimes.items():
        # the read models from the whole log in one pass, as `qinglian projections
        # rebuild` builds them: far faster than moving them event by event with the log
        rebuild_many(rt.store, projections[service], init_checkpoint=rt.inline_checkpoint)
        rt.engine.dispose()
    return counts


def _federation(rt, node_config: dict):
    """The exchange's signer, as its service builds it, for staging the shared records."""
    from services.exchange.federation import Federation
    from shared.federation.keys import load_or_create_node_key, node_registry
    nodes = node_registry(node_config)
    me = nodes.this_node()
    if me is None:
        raise RuntimeError("节点 %s 尚无身份（密钥与登记），请先初始化节点" % rt.node_id)
    return Federation(rt, me.node_id, me.level, me.parent, load_or_create_node_key(node_config),
                      nodes, None)
