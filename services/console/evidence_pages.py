"""整改佐证材料 in the console: a unit's contact uploads the files on the rectification's
page, whoever may read the rectification downloads them.

The files go to supervision over RPC (``store_evidence``, then the ``submit_evidence``
command with the references); supervision checks the name, the size, the role and the
unit's subtree, and serves a file only to who may read that rectification. Every file's
name is checked first, so a bad one among several stores none.
"""
from __future__ import annotations

import base64
from urllib.parse import quote

from werkzeug.wrappers import Response

from services.console.pages import INSPECTORS
from services.console.web import WRITERS, describe, page
from services.supervision.evidence import MAX_EVIDENCE_BYTES, file_suffix
from shared.errors import BadInput, Forbidden, NotFound, QinglianError, Unauthenticated

MAX_FILES = 20  # what one submission may carry (supervision's SubmitEvidence)


@page("/rectifications/<rect_id>/evidence", methods=("POST",), roles=WRITERS)
def upload_evidence(web, rect_id):
    rect = web.query("supervision", "get_rectification", {"rect_id": rect_id})
    files = [f for f in web.request.files.getlist("file") if f.filename]
    try:
        if not files:
            raise BadInput("请选择要上传的佐证材料", {"file": ["至少选择一个文件"]})
        if len(files) > MAX_FILES:
            raise BadInput("文件过多", {"file": ["一次至多 %d 个文件" % MAX_FILES]})
        for f in files:
            file_suffix(f.filename)
        bodies = [f.read(MAX_EVIDENCE_BYTES + 1) for f in files]
        if any(len(b) > MAX_EVIDENCE_BYTES for b in bodies):
            raise BadInput("文件过大", {"file": ["每个文件至多 %d MB" % (MAX_EVIDENCE_BYTES // 2**20)]})
        if not all(bodies):
            raise BadInput("文件是空的", {"file": ["不能上传空文件"]})
        items = []
        for f, body in zip(files, bodies):
            ref = web.service.supervision.store_evidence(
                unit_id=rect["unit_id"], filename=f.filename,
                content_b64=base64.b64encode(body).decode("ascii"), actor=web._proof())
            items.append(dict(ref, description=f.filename[:500]))
        web.command("supervision", "submit_evidence", {
            "rect_id": rect_id, "evidence": items, "note": web.form("note")})
    except (Forbidden, NotFound, Unauthenticated):
        raise
    except QinglianError as exc:
        errors = describe(exc)
        # the file's own faults (name, size, content) are shown at the file field
        if {"_schema", "filename", "content_b64"} & set(errors) or "file" in (exc.fields or {}):
            for key in ("_schema", "filename", "content_b64"):
                errors.pop(key, None)
            errors["file"] = exc.message
        return web.render("rectification.html", status=400, rect=rect, errors=errors,
                          inspector=web.can(*INSPECTORS))
    return web.redirect("/rectifications/%s" % rect_id, "已提交 %d 份佐证材料" % len(items))


@page("/rectifications/<rect_id>/evidence/<prefix>/<name>")
def download_evidence(web, rect_id, prefix, name):
    item = web.service.supervision.evidence_file(rect_id=rect_id, path="%s/%s" % (prefix, name),
                                                 actor=web._proof())
    filename = item.get("description") or name
    return Response(base64.b64decode(item["content_b64"]), mimetype="application/octet-stream",
                    headers={"Content-Disposition": "attachment; filename*=UTF-8''%s" % quote(filename)})
