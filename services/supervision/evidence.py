"""The node's evidence store (整改佐证材料): files named by their content hash under one
fixed root, ``<root>/<sha256[:2]>/<sha256><.ext>``.

Nothing a caller sends becomes a path component except a checked file extension: not
the unit id, not the file name. The unit a file is evidence for is recorded in the
rectification's event, so the same file sent for two units is stored once, and no
input (``..``, an absolute path, a NUL, a Windows separator or drive) can reach outside
the root.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from shared.errors import BadInput, NotFound

# the largest evidence file, whichever way it arrives (HTTP upload, RPC, the console)
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
# what a stored file's reference looks like: submit_evidence accepts only this form
REF_RE = r"[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]{1,10})?"
_EXT = re.compile(r"\.[A-Za-z0-9]{1,10}", re.ASCII)
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\:]")  # controls, NUL, both separators, drives/streams


def file_suffix(filename: str | None) -> str:
    """The lower-cased extension of an uploaded file's name ('' if it has none); a name
    that is a path, or carries control characters, is refused."""
    if not filename:
        return ""
    if len(filename) > 255 or _BAD_NAME.search(filename) or filename.strip(". ") == "":
        raise BadInput("文件名不合规", {"filename": [
            "只能是文件名本身：不能含路径分隔符 / \\、盘符、控制字符或 NUL，不能是 . 或 ..，至多 255 个字符"]})
    dot = filename.rfind(".")
    if dot <= 0:
        return ""
    suffix = filename[dot:]
    return suffix.lower() if _EXT.fullmatch(suffix) else ""


class EvidenceStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_of(self, ref: str) -> Path:
        """The file behind a reference ``ab/ab…cd.pdf``; refuses anything else."""
        if not isinstance(ref, str) or re.fullmatch(REF_RE, ref, re.ASCII) is None:
            raise BadInput("证据引用不合规", {"path": ["形如 ab/<sha256>.<扩展名>"]})
        return self.root / ref

    def get(self, ref: str) -> bytes:
        """The bytes of a stored file; NotFound if the store does not hold it."""
        target = self.path_of(ref)
        if not target.is_file():
            raise NotFound("整改材料文件不存在")
        return target.read_bytes()

    def put(self, body: bytes, suffix: str = "") -> dict:
        """Store ``body`` (once per content) and return its reference
        ``{path, sha256, size_bytes}``; ``suffix`` comes from ``file_suffix``."""
        digest = hashlib.sha256(body).hexdigest()
        ref = "%s/%s%s" % (digest[:2], digest, suffix)
        target = self.path_of(ref)
        # the reference is built from hex digits only; checked anyway, should that change
        if not target.resolve().is_relative_to(self.root.resolve()):
            raise BadInput("证据路径越界", {"path": ["不在整改材料存储目录内"]})
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # write then rename: a reader never sees half a file under its final name
            fd, tmp = tempfile.mkstemp(dir=target.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, target)
        return {"path": ref, "sha256": digest, "size_bytes": len(body)}
