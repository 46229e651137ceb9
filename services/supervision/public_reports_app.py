"""群众监督: a complaint or report from the public on a unit's published 微权力清单 page
(registered on the supervision ``app``; imported at the end of ``application.py``).

* ``submit_public_report``: any caller of the node - in practice the console's public page,
  which needs no sign-in, limits each client address and relays it as its own intake user
  (a viewer); no personal data is required (contact details optional). The answer is only a
  reference number.
* Inspectors (and node-admins) see the queue (``list_public_reports``) and turn a report into
  a finding with source 群众监督 - recorded by the same code as ``record_finding``, so it opens
  its rectification (限期整改) at once - or dismiss it with a reason.
"""
from __future__ import annotations

from services.supervision import queries as q
from services.supervision import schemas as s
from services.supervision.application import INSPECTORS, _owner, _today, app, record_finding
from services.supervision.domain import PublicReport, require_active
from shared.app import new_id
from shared.auth import ANY_ROLE


_report_unit = _owner("report_id")


@app.command("submit_public_report", s.SubmitPublicReport, roles=ANY_ROLE, status=201)
def submit_public_report(uow, d):
    """A complaint or report from the public about a unit (群众监督), no personal data required."""
    unit = uow.supervision.unit(d["unit_id"])
    report_id = new_id(None)
    r = PublicReport.receive(report_id, d["unit_id"], d["kind"], d["content"], d["post"],
                             d["contact"], _today(uow), unit=unit)
    uow.save(r)
    return {"report_id": report_id}


@app.query("list_public_reports", s.ListPublicReports, roles=INSPECTORS, scope="unit_id")
def list_public_reports(conn, d, actor):
    require_active(q.require_unit(conn, d["unit_id"]))
    return {"reports": q.list_public_reports(conn, d["unit_id"], d["status"])}


@app.command("convert_public_report", s.ConvertPublicReport, roles=INSPECTORS, scope=_report_unit,
             status=201)
def convert_public_report(uow, d):
    """The report becomes a finding with source 群众监督 (and so a rectification)."""
    report = uow.get(PublicReport, d["report_id"])
    finding_id = new_id(None)
    # decided first (only a report still to be handled is converted), saved after the
    # finding, so the log reads finding, rectification, then the report's conversion
    report.convert(finding_id, _today(uow), uow.actor.user_id)
    answer = record_finding(uow, {
        "finding_id": finding_id, "unit_id": report.unit_id, "source": "public_report",
        "source_ref": report.id, "inspection_id": None,
        "description": d["description"] or report.content, "severity": d["severity"],
        "category": None, "found_on": None, "owner_unit_id": d["owner_unit_id"],
        "responsible_role": d["responsible_role"], "deadline": d["deadline"],
        "requirement": d["requirement"]})
    uow.save(report)
    return {"report_id": report.id, "finding_id": finding_id, "rectification": answer}


@app.command("dismiss_public_report", s.DismissPublicReport, roles=INSPECTORS, scope=_report_unit)
def dismiss_public_report(uow, d):
    report = uow.get(PublicReport, d["report_id"])
    report.dismiss(d["reason"], _today(uow), uow.actor.user_id)
    uow.save(report)
    return {"report_id": report.id, "status": report.status}
