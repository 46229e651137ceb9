"""The supervision nameko service: commands and queries come from application.py; here are
only what nameko itself must carry - reactions to other services' events, the timers,
file downloads (XLSX / PDF / CSV) and the evidence upload.
"""
from __future__ import annotations

import base64
import binascii
import logging

from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.timer import timer

from services.supervision import application as appl
from services.supervision import queries
from services.supervision.application import app
from services.supervision.evidence import MAX_EVIDENCE_BYTES, EvidenceStore, file_suffix
from services.supervision.exports import LISTS, assessment_report, unit_lists_report
from shared import config
from shared.auth import WRITERS
from shared.errors import BadInput, NotFound, QinglianError
from shared.fields import ID_MESSAGE, ID_RE, Pattern
from shared.exports import download, export_format
from shared.http import http, upload_timeout
from shared.service import (
    MirrorsUnits, NodeService, bearer_token, error_response, idempotent, json_response,
)
from shared.unittree import directory_path

log = logging.getLogger(__name__)

# How often the timers run. Overdue detection is idempotent, so running it often only
# costs a query; publication sends only figures that changed.
OVERDUE_INTERVAL_S = 300
PUBLISH_INTERVAL_S = 3600


def _too_large() -> BadInput:
    return BadInput("文件过大", {"_schema": ["至多 %d 字节" % MAX_EVIDENCE_BYTES]})


# what the service's workers use beside the runtime: built once per container
@app.extension("evidence")
def _evidence(host) -> EvidenceStore:
    return EvidenceStore(config.var_dir(host.config) / config.node_id(host.config) / "evidence")


@app.extension("overdue_gauge")
def _overdue_gauge(host):
    """qinglian_rectifications_overdue, counted when /metrics is scraped."""
    gauge = host.metrics.gauge("qinglian_rectifications_overdue",
                               "Rectifications past their deadline and not closed")

    def count() -> None:
        with host.runtime.read() as conn:
            n = queries.overdue_open_count(conn)
        gauge.labels(host.metrics.service).set(n)
    host.metrics.probe("rectifications", count, (gauge,))
    return gauge


class SupervisionService(MirrorsUnits, NodeService):
    name = "supervision"
    app = app
    timer_routines = ("detect_overdue", "publish_indicators",  # the timers' (metered apart)
                      "detect_task_overdue")

    # -- reactions ------------------------------------------------------------------------
    # requeue_on_error: a transient failure (the log's writer lock busy, a version race)
    # must not lose a reaction; the handlers are idempotent, so a redelivery is safe.
    @event_handler("units", "Unit.Registered", requeue_on_error=True)
    @idempotent
    def on_unit_registered(self, event, uow):
        appl.on_unit_registered(uow, event)

    @event_handler("units", "MicroPowerList.Published", requeue_on_error=True)
    @idempotent
    def on_micro_power_published(self, event, uow):
        appl.on_micro_power_published(uow, event)

    @event_handler("education", "EducationIndicators.Published", requeue_on_error=True)
    @idempotent
    def on_education_indicators(self, event, uow):
        try:
            appl.on_education_indicators(uow, event)
        except BadInput as exc:
            # a payload that breaks its contract will not get better by redelivery:
            # say so loudly and let it be marked handled
            self.store.metrics.consumer_failed("%s.on_education_indicators" % self.name)
            log.error("EducationIndicators.Published %s refused: %s", event.event_id, exc)

    # -- timers ---------------------------------------------------------------------------
    @timer(interval=OVERDUE_INTERVAL_S)
    def overdue_timer(self):
        return self.store.execute("detect_overdue", {}, self.store.system_actor())

    @timer(interval=OVERDUE_INTERVAL_S)
    def task_overdue_timer(self):
        """跟踪问效: overdue tasks flagged and escalated as rectifications are."""
        return self.store.execute("detect_task_overdue", {}, self.store.system_actor())

    @timer(interval=PUBLISH_INTERVAL_S)
    def publish_timer(self):
        return self.store.execute("publish_indicators", {}, self.store.system_actor())

    # -- downloads ---------------------------------------------------------------------------
    @http("GET", "/export/<string:name>")
    def export(self, request, name):
        """GET /export/unit_lists?unit_id=..&format=xlsx|pdf|csv[&list=problems|...]
        GET /export/assessment_report?round_id=..&format=xlsx|pdf|csv - a file download."""
        try:
            actor = self.store.authenticate(bearer_token(request))
            if name not in ("unit_lists", "assessment_report"):
                raise NotFound("没有名为 %s 的导出（可导出 unit_lists、assessment_report）" % name)
            params = request.args.to_dict(flat=True)
            errors = {}
            fmt = export_format(params.pop("format", None), errors)
            which = params.pop("list", None)
            if name == "unit_lists" and which is not None and which not in LISTS:
                errors["list"] = ["应为 %s 之一" % "、".join(LISTS)]
            if name == "unit_lists" and fmt == "csv" and which is None:
                errors["list"] = ["一个 CSV 文件只含一张清单：请用 list 指定"]
            if errors:
                raise BadInput("导出请求有误", errors)
            data = self.store.query(name, params, actor)
            node, now = self.store.node_id, self.store.runtime.clock().astimezone(
                self.store.settings.tz)
            if name == "unit_lists":
                report, stem = unit_lists_report(data, [which] if which else list(LISTS), node, now)
            else:  # as CSV: the ranking only (the first table)
                report, stem = assessment_report(data, node, now)
            return download(report, fmt, stem, config.pdf_font(self.store.config))
        except QinglianError as exc:
            return error_response(exc)

    # -- evidence files -------------------------------------------------------------------------
    # a file, not JSON; its own size limit; the token is checked before it is read
    @http("POST", "/evidence", body="raw", max_body=MAX_EVIDENCE_BYTES, body_seconds=upload_timeout)
    def upload_evidence(self, request):
        """POST /evidence?unit_id=..&filename=.. (raw body): store a file by its sha256 and
        return the reference ``{path, sha256, size_bytes}`` to pass to submit_evidence.
        Content-addressed, so uploading the same file twice stores it once."""
        try:
            actor = self.store.authenticate(bearer_token(request))
            self._evidence_allowed(actor, request.args.get("unit_id"), request.args.get("filename"))
            body = request.get_data(cache=False)
            return json_response(self._put_evidence(request.args.get("filename"), body), 201)
        except QinglianError as exc:
            return error_response(exc)

    # the console's way in: the same checks, the file base64 in the call (size-limited)
    @rpc(expected_exceptions=QinglianError)
    def store_evidence(self, unit_id, filename, content_b64, actor=None):
        """Store one evidence file sent as base64; returns ``{path, sha256, size_bytes}``."""
        actor = self.store.rpc_actor(actor)
        self._evidence_allowed(actor, unit_id, filename)
        if not isinstance(content_b64, str) or len(content_b64) > (MAX_EVIDENCE_BYTES + 2) // 3 * 4:
            raise _too_large()
        try:
            body = base64.b64decode(content_b64, validate=True)
        except (binascii.Error, ValueError):
            raise BadInput("文件内容不是有效的 base64", {"content_b64": ["应为 base64 编码"]})
        return self._put_evidence(filename, body)

    @rpc(expected_exceptions=QinglianError)
    def evidence_file(self, rect_id, path, actor=None):
        """One file of a rectification's evidence, for whoever may read that rectification
        (the get_rectification query's roles and scope); ``{..the item, content_b64}``."""
        rect = self.store.query("get_rectification", {"rect_id": rect_id}, self.store.rpc_actor(actor))
        item = next((dict(i) for s in rect["evidence"] for i in s["items"] if i["path"] == path), None)
        if item is None:
            raise NotFound("该整改没有这份佐证材料")
        item["content_b64"] = base64.b64encode(self.store.ext.evidence.get(path)).decode("ascii")
        return item

    @rpc(expected_exceptions=QinglianError)
    def task_evidence_file(self, task_id, path, actor=None):
        """One file of a task's completion evidence (跟踪问效), for whoever may read that
        task (get_task's roles and scope), only a file that is that task's evidence."""
        task = self.store.query("get_task", {"task_id": task_id}, self.store.rpc_actor(actor))
        item = next((dict(i) for i in task["evidence"] if i["path"] == path), None)
        if item is None:
            raise NotFound("该任务没有这份佐证材料")
        item["content_b64"] = base64.b64encode(self.store.ext.evidence.get(path)).decode("ascii")
        return item

    def _evidence_allowed(self, actor, unit_id, filename) -> None:
        """Refuses (before any file is read) what may not be stored: who, for which unit."""
        if not unit_id:
            raise BadInput("这是哪个单位的佐证材料？", {"unit_id": ["必填"]})
        if not isinstance(unit_id, str) or not Pattern(ID_RE, ID_MESSAGE).regex.fullmatch(unit_id):
            raise BadInput("单位编号不合规", {"unit_id": [ID_MESSAGE]})
        file_suffix(filename)
        with self.store.read() as conn:
            if directory_path(conn, unit_id) is None:
                raise NotFound("单位 %s 不存在" % unit_id)
            self.store.app.check_scope(conn, actor, WRITERS, unit_id)

    def _put_evidence(self, filename, body: bytes) -> dict:
        if not body:
            raise BadInput("上传内容为空", {"_schema": ["请求体就是文件本身"]})
        if len(body) > MAX_EVIDENCE_BYTES:
            raise _too_large()
        return self.store.ext.evidence.put(body, file_suffix(filename))
