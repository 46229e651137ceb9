"""``qinglian demo`` (``make demo``): a city and two districts on this machine.

Each node is a vhost of the local RabbitMQ and a folder of SQLite files under
``var/demo/<node>/``, with its own key, its own registry trusting the other two, and
RabbitMQ federation links (city <-> each district). Each node's services run as
``nameko run`` processes with their own ``NODE_ID``/``AMQP_URI``/``QINGLIAN_VAR``/
``WEB_SERVER_ADDRESS``. The demo then plays a scenario drawn from the 清廉机关建设
report through the nodes' HTTP APIs - units, a case compiled jointly (案例联编), an
experience others learn from (经验联享), a joint 专题党日 (活动联办), a model section
(典型联树), figures the city compares (上下互比) and a joint problem with proposals and
a resolution (难题联解) - checks that the three nodes agree, and prints where to look.

Ctrl-C (or SIGTERM) stops every process it started and removes the vhosts; ``--check``
does the same right after the agreement check and exits 0 or 1.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from shared import config, registry
from tooling.processes import NodeApi, stop_process_groups

REPO = Path(__file__).resolve().parents[1]
PORT_OFFSET = {"units": 1, "supervision": 2, "education": 3, "exchange": 4}

UNITS = {
    "city": [("city-gw", "市直机关工委", "city_authority", "city", None),
             ("city-jjz", "市纪委监委派驻纪检监察组", "government_dept", "unit", "city-gw")],
    "district-a": [("a-gw", "甲区区直机关工委", "district_authority", "district", None),
                   ("a-xj", "甲区x局（清廉机关示范点）", "government_dept", "unit", "a-gw"),
                   ("a-zwfw", "甲区政务服务中心窗口", "window_unit", "unit", "a-gw"),
                   ("a-zfdd", "甲区综合执法大队", "law_enforcement", "unit", "a-gw")],
    "district-b": [("b-gw", "乙区区直机关工委", "district_authority", "district", None),
                   ("b-xj", "乙区x局", "government_dept", "unit", "b-gw"),
                   ("b-spk", "乙区x局审批科", "section", "section", "b-xj"),
                   ("b-jczs", "乙区基层站所", "grassroots_station", "unit", "b-gw")],
}


class DemoError(Exception):
    pass


def log_tail(path: Path, lines: int = 15) -> str:
    """The end of a service's log, for an error printed where the log itself may be gone
    by the time anyone reads it (a test's temporary folder, a CI run)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log at %s)" % path
    return "\n".join("    | " + line for line in text.rstrip().splitlines()[-lines:])


class Api(NodeApi):
    error = DemoError


def wait(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.2)


def say(text: str) -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, base_port: int, prefix: str, services, api: str | None = None):
        from tooling.localnet import LocalNetwork
        self.var_root = Path(config.var_dir()).resolve() / "demo"
        if self.var_root.exists():
            shutil.rmtree(self.var_root)  # a fresh scenario every run
        self.var_root.mkdir(parents=True)
        self.services = list(services or ("units", "exchange"))
        if "exchange" not in self.services:
            self.services.append("exchange")
        # dates from today in the users' zone, so the scenario runs on any day: the
        # supervision service publishes figures for the month it is in
        self.today = datetime.now(ZoneInfo(config.timezone_name())).date()
        self.period = self.today.strftime("%Y-%m")
        ports = {n: base_port + 10 * i + PORT_OFFSET["exchange"]
                 for i, n in enumerate(("city", "district-a", "district-b"))}
        self.net = LocalNetwork(self.var_root, prefix="%s-%s" % (prefix, uuid.uuid4().hex[:4]),
                                amqp_base=config.amqp_uri(), ports=ports,
                                api_url=api or config.rabbit_api_url(), service_users=True)
        self.base_port = base_port
        self.procs: list[tuple[str, str, subprocess.Popen]] = []
        self.tokens: dict[str, str] = {}
        self.api: dict[tuple[str, str], Api] = {}

    def port(self, node: str, service: str) -> int:
        i = ("city", "district-a", "district-b").index(node)
        return self.base_port + 10 * i + PORT_OFFSET[service]

    # -- nodes ----------------------------------------------------------------------------
    def start(self) -> None:
        from shared.auth import UserDirectory
        from shared.db import make_engine
        say("· creating three nodes as vhosts of %s (prefix %s)" % (config.amqp_uri(), self.net.prefix))
        self.net.create()
        for node in self.net.nodes.values():
            users = UserDirectory(make_engine(config.node_database_url(node.config)), node.node_id)
            users.create_schema()
            users.add_user("admin", "%s 管理员" % node.node_id, ["node-admin"])
            self.tokens[node.node_id] = users.issue_token("admin", "demo")
            users.engine.dispose()
        cfg = self.var_root / "nameko.yaml"
        cfg.write_text((REPO / "deploy" / "config.yaml").read_text(encoding="utf-8")
                       + "\n# demo: peers' feeds are polled every 5 s (production: 60)\n"
                         "FEDERATION_SYNC_SECONDS: 5\n", encoding="utf-8")
        for node in self.net.nodes.values():
            for service in self.services:
                port = self.port(node.node_id, service)
                # each service logs in to its node's broker as its own user
                env = dict(os.environ, **{k: str(v) for k, v in node.service_config(service).items()})
                env["WEB_SERVER_ADDRESS"] = "127.0.0.1:%d" % port
                env.pop("EXCHANGE_DATABASE_URL", None)
                for name in ("UNITS", "SUPERVISION", "EDUCATION", "EXCHANGE", "NODE"):
                    env.pop("%s_DATABASE_URL" % name, None)  # SQLite under the node's var
                log = open(node.var_dir / ("%s.log" % service), "ab")
                cmd = [sys.executable, "-m", "nameko", "run", "--config", str(cfg),
                       registry.get(service).target]
                proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=log, stderr=log,
                                        start_new_session=True)
                self.procs.append((node.node_id, service, proc))
                self.api[(node.node_id, service)] = Api(node.node_id, "http://127.0.0.1:%d" % port,
                                                        self.tokens[node.node_id])
        say("· started %d service processes (logs in %s/<node>/<service>.log)"
            % (len(self.procs), self.var_root))
        for node_id, service, proc in self.procs:
            url = "http://127.0.0.1:%d/health" % self.port(node_id, service)

            def up():
                if proc.poll() is not None:
                    log = self.net.nodes[node_id].var_dir / ("%s.log" % service)
                    raise DemoError("%s of %s exited (%s); the end of %s:\n%s"
                                    % (service, node_id, proc.returncode, log, log_tail(log)))
                try:
                    return requests.get(url, timeout=1).status_code == 200
                except requests.RequestException:
                    return False
            wait(up, "%s of %s to answer" % (service, node_id), 90)
        self.net.wait_bindings(60)
        say("· all services answer; federation links and bindings are in place")

    def stop(self, keep: bool = False) -> None:
        stop_process_groups([proc for _n, _s, proc in self.procs], signal.SIGTERM, 20)
        self.procs = []
        if not keep:
            left = self.net.destroy()
            if left:
                say("could not remove vhosts %s (management API away?): delete them with "
                    "`rabbitmqctl delete_vhost`" % ", ".join(left))

    # -- the scenario --------------------------------------------------------------------------
    def x(self, node: str) -> Api:
        return self.api[(node, "exchange")]

    def seen(self, node: str, rid: str, check=lambda r: True, what: str = "") -> dict:
        return wait(lambda: (lambda r: r if r and check(r) else None)(self.x(node).get("get_record", record_id=rid)),
                    what or "%s at %s" % (rid, node))

    def day(self, days: int) -> str:
        return (self.today + timedelta(days=days)).isoformat()

    def scenario(self) -> dict:
        a, city, b = self.x("district-a"), self.x("city"), self.x("district-b")
        ALL = {"sharing": "all", "recipients": []}
        if "units" in self.services:
            for node, units in UNITS.items():
                api = self.api[(node, "units")]
                for uid, name, kind, level, parent in units:
                    api.post("register_unit", {"unit_id": uid, "name": name, "kind": kind,
                                               "level": level, "parent_id": parent})
            say("· units registered on each node (区直机关工委, x局 示范点, 窗口, 执法大队, 基层站所 …)")
        ids = {}

        say("\n案例联编 上下互通")
        ids["case"] = a.post("compile_case", {
            "case_id": "case-x-zhuanxiang", "unit_id": "a-zwfw",
            "title": "x专项治理：窗口单位审核环节虚报冒领补贴案剖析", "category": "惠民资金",
            "summary": "对典型案例不只传达学习，深入分析、举一反三。",
            "facts": "窗口工作人员利用审核职权，伙同他人虚报冒领惠民补贴。",
            "analysis": "审核环节一人说了算；微权力清单未公开；监督停在部门层面，未延伸到基层站所。",
            "lessons": ["推行“微权力清单”公开制度", "审核、发放岗位分离"],
            "tags": ["微权力", "窗口单位"], "share": ALL}, retry_missing=20)["case_id"]
        say("  district-a compiled and shared case %s" % ids["case"])
        self.seen("city", ids["case"])
        self.seen("district-b", ids["case"])
        k_city = city.post("contribute_to_case", {
            "case_id": ids["case"], "contribution_type": "analysis", "unit_id": "city-jjz",
            "text": "全市同类问题集中在惠民资金审核环节，建议统一审核流程并定期交叉检查。"},
            retry_missing=20)["contribution_id"]
        k_b = b.post("contribute_to_case", {
            "case_id": ids["case"], "contribution_type": "local_lesson", "unit_id": "b-jczs",
            "text": "乙区基层站所对照查摆，发现两处类似风险点，已纳入问题清单和整改清单。"},
            retry_missing=20)["contribution_id"]
        say("  the city and district-b contributed (%s, %s)" % (k_city, k_b))
        self.seen("district-a", ids["case"], lambda r: len(r["sub_records"].get("contribution", [])) == 2,
                  "both contributions at district-a")
        rev = a.post("revise_case", {"case_id": ids["case"], "merge_contributions": [k_city, k_b],
                                     "lessons": ["推行“微权力清单”公开制度", "审核、发放岗位分离",
                                                 "市级统一审核流程", "基层站所对照查摆"],
                                     "note": "吸收市级分析和乙区经验"})
        say("  district-a merged both into revision %d" % rev["revision"])

        say("\n经验联享 上下互学")
        ids["experience"] = a.post("draft_experience", {
            "experience_id": "exp-seven-focus", "unit_id": "a-xj",
            "title": "“清廉机关示范点建设深化拓展年”：七个聚焦",
            "summary": "聚焦责任抓落实、风险抓防控、思想抓教育、权力抓规范、作风抓转变、发展抓实践、特色抓宣传。",
            "body": "推动清廉机关建设与党建、业务等日常工作深度融合，形成“事事有清廉、处处显清廉”。",
            "business_type": "示范点建设", "topics": ["示范点", "融合"], "share": ALL})["experience_id"]
        self.seen("district-b", ids["experience"])
        b.post("mark_learned", {"experience_id": ids["experience"], "unit_id": "b-xj",
                                "note": "借鉴“七个聚焦”，制定本局清廉机关建设方案"}, retry_missing=20)
        self.seen("city", ids["experience"])
        city.post("post_comment", {"parent_kind": "experience", "parent_id": ids["experience"],
                                   "text": "做法实，可在全市区直机关推广。"})
        say("  district-a shared an experience; district-b learned from it; the city commented")

        say("\n活动联办 上下互动")
        ids["activity"] = city.post("plan_activity", {
            "activity_id": "party-day-%s" % self.period, "unit_id": "city-gw",
            "title": "“共学党纪法规、共看警示短片、共上廉政党课、共话清廉感悟”专题党日",
            "theme": "警示教育", "description": "市区联办：廉政微党课（一人讲、大家谈、领导点评）。",
            "starts_at": "%sT09:00:00+08:00" % self.day(14), "ends_at": "%sT11:30:00+08:00" % self.day(14),
            "location": "市廉政教育基地", "invited_nodes": ["district-a", "district-b"],
            "share": {"sharing": "named", "recipients": []}}, retry_missing=20)["activity_id"]
        self.seen("district-a", ids["activity"])
        self.seen("district-b", ids["activity"])
        a.post("sign_up", {"activity_id": ids["activity"], "unit_id": "a-xj", "headcount": 15})
        a.post("sign_up", {"activity_id": ids["activity"], "unit_id": "a-zfdd", "headcount": 8})
        b.post("sign_up", {"activity_id": ids["activity"], "unit_id": "b-xj", "headcount": 12})
        a.post("record_attendance", {"activity_id": ids["activity"], "units": [
            {"unit_id": "a-xj", "attendees": 15}, {"unit_id": "a-zfdd", "attendees": 7}]})
        b.post("record_attendance", {"activity_id": ids["activity"],
                                     "units": [{"unit_id": "b-xj", "attendees": 12}]})
        city.post("record_attendance", {"activity_id": ids["activity"],
                                        "units": [{"unit_id": "city-gw", "attendees": 6}]})
        self.seen("city", ids["activity"], lambda r: r["participation"]["attendees"] == 40,
                  "every node's attendance at the city")
        city.post("report_outcome", {"activity_id": ids["activity"],
                                     "summary": "三级联动，警示教育入脑入心。",
                                     "results": ["参加40人", "交流心得体会23篇"]})
        say("  the city organised a 专题党日; 3 units signed up; each node recorded its attendance (40)")

        say("\n典型联树 上下互比")
        ids["exemplar"] = b.post("nominate_exemplar", {
            "exemplar_id": "model-section-spk", "unit_id": "b-spk", "category": "model_section",
            "title": "“讲政治、守纪律、负责任、有效率”模范科室", "section": "审批科",
            "description": "以廉肃纪、以廉明德、以廉强责，内设科室之间互比互查成效明显。",
            "indicators": {"closure_rate": 1.0, "checkin_coverage": 0.99}, "period": self.period,
            "share": ALL}, retry_missing=20)["exemplar_id"]
        self.seen("city", ids["exemplar"])
        city.post("endorse_exemplar", {"exemplar_id": ids["exemplar"], "comment": "建议全市推广"})
        if "supervision" not in self.services:
            self.stand_in_for_supervision()

        def compared():
            if "supervision" in self.services:  # its hourly timer, run now
                for node in ("district-a", "district-b"):
                    self.api[(node, "supervision")].post("publish_indicators", {})
            return len((city.get("compare_indicators", period=self.period) or {}).get("units", [])) >= 4
        wait(compared, "both districts' figures at the city")
        say("  district-b nominated a model section, the city endorsed it; the city compares "
            "units of both districts without anyone re-typing figures")

        say("\n难题联解 上下互助")
        ids["problem"] = a.post("post_problem", {
            "problem_id": "prob-jjwy", "unit_id": "a-gw",
            "title": "纪检委员身兼数职，“咬耳扯袖”难以全覆盖、经常化",
            "context": "机关党组织纪检委员多数身兼数职且业务能力参差不齐，对党员干部8小时以外的监督不够。",
            "deadline": self.day(90), "tags": ["监督", "纪检委员"], "share": ALL})["problem_id"]
        self.seen("city", ids["problem"])
        self.seen("district-b", ids["problem"])
        p_city = city.post("propose_solution", {
            "problem_id": ids["problem"], "unit_id": "city-jjz", "summary": "“部门对部门”交叉监督",
            "detail": "市直机关工委统筹，部门结对开展交叉监督，纪检委员季度轮值、问题清单共享。"})["proposal_id"]
        p_b = b.post("propose_solution", {
            "problem_id": ids["problem"], "unit_id": "b-xj", "summary": "“社区对部门”伴随式监督",
            "detail": "引入社区监督员，对窗口和执法部门开展伴随式监督。"})["proposal_id"]
        a.post("post_comment", {"parent_kind": "proposal", "parent_id": p_b,
                                "text": "执法大队可先行试点。"}, retry_missing=20)
        self.seen("district-a", ids["problem"], lambda r: len(r["sub_records"].get("proposal", [])) == 2,
                  "both proposals at district-a")
        a.post("accept_proposal", {"problem_id": ids["problem"], "proposal_id": p_city,
                                   "note": "先在区直机关推行，社区监督作为补充"})
        a.post("record_resolution", {"problem_id": ids["problem"],
                                     "summary": "建立“部门对部门”交叉监督机制",
                                     "results": ["12个部门结对", "纪检委员提醒谈话覆盖率100%"],
                                     "measures": ["季度轮值", "问题清单共享"], "resolved_on": self.day(0)})
        say("  district-a posted a problem; the city and district-b proposed; district-a accepted "
            "the city's and recorded the resolution")

        ids["city_only"] = a.post("post_problem", {
            "problem_id": "prob-liuhen", "unit_id": "a-gw", "title": "基层“过度留痕”的减负口径",
            "context": "请市级明确哪些台账可以不再重复报送。", "deadline": self.day(60),
            "share": {"sharing": "city", "recipients": []}})["problem_id"]
        say("  district-a asked the city alone (sharing 'city'): %s" % ids["city_only"])
        return ids

    def stand_in_for_supervision(self) -> None:
        """Publish 上下互比 figures as the supervision service would (it is not running
        in this demo): UnitIndicators.Published on each district's broker."""
        from kombu import Connection, Exchange, Producer
        figures = {"district-a": [("a-xj", 0.92, 1), ("a-zwfw", 0.85, 2)],
                   "district-b": [("b-xj", 0.96, 0), ("b-jczs", 0.78, 3)]}
        for node_id, rows in figures.items():
            node = self.net[node_id]
            # as supervision: its own broker login, which the exchange service checks
            uri = node.service_config("supervision")["AMQP_URI"]
            with Connection(uri) as conn:
                producer = Producer(conn.channel(), Exchange("supervision.events", type="topic",
                                                             durable=True))
                for uid, closure, overdue in rows:
                    producer.publish({
                        "event_id": str(uuid.uuid4()), "position": 1,
                        "stream_id": "UnitIndicators:%s" % uid, "stream_type": "UnitIndicators",
                        "version": 1, "type": "UnitIndicators.Published", "schema_version": 1,
                        "payload": {"unit_id": uid, "as_of": self.day(0), "findings_total": 8,
                                    "rectifications_closed": 7, "closed_on_time": 6,
                                    "closure_rate": closure, "timeliness_rate": 0.8,
                                    "overdue_count": overdue, "escalated_count": 0, "risk_high": 1,
                                    "risk_medium": 2, "risk_low": 4, "screening_on_time": True,
                                    "screening_overdue": False, "micro_power_missing": False},
                        "metadata": {"node": node_id, "correlation_id": str(uuid.uuid4()),
                                     "occurred_at": datetime.now(timezone.utc).isoformat()}},
                        routing_key="UnitIndicators.Published", serializer="json", delivery_mode=2,
                        user_id=conn.userid)
        say("  (standing in for the supervision service: UnitIndicators.Published on each district)")

    # -- agreement -------------------------------------------------------------------------------
    @staticmethod
    def _view(record: dict) -> dict:
        subs = {kind: sorted((s["id"], s["status"]) for s in items)
                for kind, items in record.get("sub_records", {}).items()}
        return {"status": record["status"], "content": record["content"], "subs": subs}

    def agree(self, ids: dict, timeout: float = 60.0) -> list[str]:
        problems = []
        everyone = ("city", "district-a", "district-b")
        audiences = {k: everyone for k in ("case", "experience", "activity", "exemplar", "problem")}
        for kind, nodes in audiences.items():
            rid = ids[kind]
            owner = rid.split("/", 1)[0]

            def same():
                views = [self.x(n).get("get_record", record_id=rid) for n in nodes]
                if not all(views):
                    return None
                v = [self._view(r) for r in views]
                return v if all(x == v[0] for x in v) else None
            try:
                view = wait(same, "the three nodes to agree on %s" % rid, timeout)
                say("  ✓ %-9s %-36s identical on all three nodes (%s, owner %s)"
                    % (kind, rid, view[0]["status"], owner))
            except DemoError as exc:
                problems.append(str(exc))
        if self.x("district-b").get("get_record", record_id=ids["city_only"]) is not None:
            problems.append("district-b can see a record shared with the city only")
        elif self.x("city").get("get_record", record_id=ids["city_only"]) is None:
            problems.append("the city did not receive the city-only record")
        else:
            say("  ✓ city-only  %-36s at the city, not at district-b" % ids["city_only"])
        resolution = [self.x(n).get("get_record", record_id=ids["problem"])["content"]["resolution"]
                      for n in everyone]
        if not (resolution[0] and resolution[0] == resolution[1] == resolution[2]):
            problems.append("the resolution records differ")
        return problems

    def where_to_look(self, ids: dict) -> None:
        say("\nWhere to look (bearer tokens below; e.g. curl -H 'Authorization: Bearer <token>' URL):")
        for node in ("city", "district-a", "district-b"):
            base = "http://127.0.0.1:%d" % self.port(node, "exchange")
            say("  %-10s token %s" % (node, self.tokens[node]))
            say("             %s/api/shared_feed            the node's shared feed (newest first)" % base)
            say("             %s/api/record_history?record_id=%s" % (base, ids["case"]))
            say("             %s/metrics                     qinglian_federation_* metrics" % base)
        city = "http://127.0.0.1:%d" % self.port("city", "exchange")
        say("  city       %s/api/compare_indicators?period=%s   上下互比" % (city, self.period))
        say("             %s/api/district_summary                   per-district summary" % city)
        say("             %s/federation/status                       outbox and inbox per origin" % city)
        say("  RabbitMQ   %s/#/federation  (vhosts %s-*)" % (self.net.admin.api_url, self.net.prefix))


def run_demo(check: bool = False, base_port: int = 8200, prefix: str = "qinglian-demo",
             keep: bool = False, services=None, api: str | None = None) -> int:
    from shared.federation.broker import BrokerError
    demo = None
    stopping = []

    def on_term(*_):
        stopping.append(1)
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        demo = Demo(base_port, prefix, services, api)
        demo.start()
        ids = demo.scenario()
        say("\nChecking that the nodes agree …")
        problems = demo.agree(ids)
        for p in problems:
            say("  ✗ %s" % p)
        if check:
            say("demo check: %s" % ("OK" if not problems else "FAILED"))
            return 0 if not problems else 1
        demo.where_to_look(ids)
        say("\nRunning. Ctrl-C stops the three nodes.")
        while True:
            for node, service, proc in demo.procs:
                if proc.poll() is not None:
                    say("%s of %s exited (%s); stopping" % (service, node, proc.returncode))
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("\nstopping …")
        return 0
    except (DemoError, BrokerError, TimeoutError, requests.RequestException) as exc:
        say("demo failed: %s" % exc)
        return 1
    finally:
        if demo is not None:
            demo.stop(keep=keep)
            say("stopped: every demo process ended%s" % ("" if keep else ", vhosts removed"))
        signal.signal(signal.SIGTERM, previous)
