"""What an office does with an exported file, for tests: print it to PDF with LibreOffice
(Debian's libreoffice-calc-nogui, installed by .ci/run) and read the pages back."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

from pypdf import PdfReader

LIBREOFFICE = shutil.which("libreoffice") or shutil.which("soffice")


def convert_to_pdf(files: list[Path], workdir: Path) -> list[Path]:
    """One LibreOffice run (it is slow to start) for all ``files``, with a profile of its own
    under ``workdir`` so a run never touches, or waits for, anybody else's."""
    assert LIBREOFFICE, "LibreOffice is not installed (apt-get install libreoffice-calc-nogui)"
    outdir = workdir / "pdf"
    profile = (workdir / "lo-profile").resolve().as_uri()
    done = subprocess.run(
        [LIBREOFFICE, "-env:UserInstallation=%s" % profile, "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(outdir)] + [str(f) for f in files],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = [outdir / (Path(f).stem + ".pdf") for f in files]
    missing = [p.name for p in out if not p.exists()]
    assert not missing, "LibreOffice made no %s: %s %s" % (missing, done.stdout, done.stderr)
    return out


def pages_text(pdf: bytes | Path) -> list[str]:
    """The text of each page, blanks removed (PDF text extraction spaces CJK unevenly)."""
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    reader = PdfReader(io.BytesIO(data))
    return ["".join((page.extract_text() or "").split()) for page in reader.pages]


def landscape_pages(pdf: bytes | Path) -> list[bool]:
    """For each page: is it wider than high?"""
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    return [float(p.mediabox.width) > float(p.mediabox.height)
            for p in PdfReader(io.BytesIO(data)).pages]


def embedded_fonts(pdf: bytes) -> dict[str, bool]:
    """Font name -> whether its program is embedded, for every font a page uses."""
    out = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        fonts = page.get("/Resources", {}).get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is None and "/DescendantFonts" in font:
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            out[str(font.get("/BaseFont"))] = any(
                k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    return out
