"""整改佐证材料 through the console against the real units, supervision and console
services: upload on the rectification's page (multipart + CSRF), download by who may read
the rectification, refusal for another subtree's unit-admin; bad uploads write nothing."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.console.tests.conftest import NODE
from services.console.tests.e2e.test_console_http import node, record_finding  # noqa: F401 - the fixture
from services.supervision.evidence import MAX_EVIDENCE_BYTES


@pytest.fixture(scope="module")
def enode(node):
    """test_console_http's node (区财政局 a, 区市场监管局 b) with 区市场监管局's contact."""
    node.add_user("ua-b", "孙监管", ["unit-admin"], node.ids["b"])
    return node


def _stored_files(node) -> list[Path]:
    root = Path(node.base["QINGLIAN_VAR"]) / NODE / "evidence"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _upload(client, rect_id, files, csrf=True, note="已整改"):
    data = {"note": note}
    if csrf:
        data["_csrf"] = client.csrf("/rectifications/%s" % rect_id)
    return client.s.post("%s/rectifications/%s/evidence" % (client.url, rect_id), data=data,
                         files=[("file", f) for f in files], allow_redirects=False, timeout=60)


def test_bad_uploads_are_refused_in_chinese_and_write_nothing(enode, client_for):
    node = enode
    rect_id = record_finding(node, node.ids["b"])
    head = node.head("supervision")
    ua = client_for(node, "ua-b")
    assert "提交佐证材料" in ua.get("/rectifications/%s" % rect_id).text

    r = _upload(ua, rect_id, [("整改报告.pdf", b"%PDF-1.4 report")], csrf=False)
    assert r.status_code == 403 and "请求缺少有效的安全校验码" in r.text
    r = _upload(ua, rect_id, [("a:b.pdf", b"%PDF-1.4 report")])
    assert r.status_code == 400 and "文件名不合规" in r.text
    # a good file next to a bad one: neither is stored
    r = _upload(ua, rect_id, [("整改报告.pdf", b"%PDF-1.4 report"), ("x:y.pdf", b"other")])
    assert r.status_code == 400 and "文件名不合规" in r.text
    r = _upload(ua, rect_id, [("大文件.pdf", b"x" * (MAX_EVIDENCE_BYTES + 1))])
    assert r.status_code == 400 and "文件过大" in r.text
    r = _upload(ua, rect_id, [])
    assert r.status_code == 400 and "请选择要上传的佐证材料" in r.text
    # another subtree's unit-admin may not upload for 区市场监管局
    other = client_for(node, "ua-a")
    r = _upload(other, rect_id, [("整改报告.pdf", b"%PDF-1.4 report")], csrf=False)
    assert r.status_code == 403
    other_csrf = other.csrf("/account")
    r = other.s.post("%s/rectifications/%s/evidence" % (other.url, rect_id),
                     data={"_csrf": other_csrf}, files=[("file", ("整改报告.pdf", b"%PDF-1.4"))],
                     allow_redirects=False, timeout=15)
    assert r.status_code in (403, 404)
    # the page still works and says no evidence is in
    assert "尚未提交佐证材料" in ua.get("/rectifications/%s" % rect_id).text
    assert node.head("supervision") == head
    assert _stored_files(node) == []


def test_upload_then_the_entitled_download_and_another_subtree_is_refused(enode, client_for):
    node = enode
    rect_id = record_finding(node, node.ids["b"])
    ua = client_for(node, "ua-b")
    report, photo = b"%PDF-1.4 rectification report", b"\x89PNG photo of the new signboard"
    r = _upload(ua, rect_id, [("整改报告.pdf", report), ("现场照片.png", photo)])
    assert r.status_code == 303, r.text
    page = ua.get("/rectifications/%s" % rect_id).text
    assert "整改报告.pdf" in page and "现场照片.png" in page and "提交佐证材料" not in page
    digest = hashlib.sha256(report).hexdigest()
    href = "/rectifications/%s/evidence/%s/%s.pdf" % (rect_id, digest[:2], digest)
    assert href in page

    insp = client_for(node, "insp")
    r = insp.get(href)
    assert r.status_code == 200 and r.content == report
    assert "attachment" in r.headers["Content-Disposition"]
    assert "%E6%95%B4%E6%94%B9" in r.headers["Content-Disposition"]  # 整改 (the name given)
    assert ua.get(href).content == report

    other = client_for(node, "ua-a")
    r = other.get(href)
    assert r.status_code in (403, 404) and r.content != report
    # a file that is not this rectification's evidence is not served, even to an inspector
    other_rect = record_finding(node, node.ids["a"])
    r = insp.get("/rectifications/%s/evidence/%s/%s.pdf" % (other_rect, digest[:2], digest))
    assert r.status_code == 404 and r.content != report
    r = insp.get("/rectifications/%s/evidence/zz/..%%2f..%%2fsecret" % rect_id)
    assert r.status_code in (400, 404) and "Traceback" not in r.text
