"""The layers, checked on the imports themselves (an AST scan, so a lazy import inside a
function or an ``importlib.import_module("services.%s..." % name)`` counts too):

* the kernel (``shared/``) imports no service and no tooling: it finds services through
  the registry (``shared.registry``, the package's entry points);
* a service imports no tooling, and no other service, but the console, the browser's
  front of the node, which shows every service's vocabulary (its domain's enums);
* the node-wide tooling (``tooling/``: the CLI, backup, demo, local network) is the top
  and may import anything;
* a service's ``domain.py`` is pure: importing it loads no nameko, SQLAlchemy or kombu.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
IMPORTERS = ("import_module", "__import__", "find_spec")
# service -> the other services it may import
MAY_IMPORT = {"console": {"units", "supervision", "education", "exchange"}}


def _literal_prefix(node: ast.AST) -> str | None:
    """The module named by a string (``"services.x"``, ``"services.%s.app" % s``,
    ``f"services.{s}"``) up to its first placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = _literal_prefix(node.left)
        return left.split("%", 1)[0] if left is not None else None
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return node.values[0].value
    return None


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update("%s.%s" % (node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in IMPORTERS:
                prefix = _literal_prefix(node.args[0])
                if prefix:
                    found.add(prefix)
    return found


def _top(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _code(folder: str):
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "tests" not in path.relative_to(ROOT).parts:
            yield path, imports(path)


def _service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 1 and parts[1] else None


def test_the_kernel_imports_no_service_and_no_tooling():
    bad = ["%s: %s" % (path.relative_to(ROOT), m) for path, found in _code("shared")
           for m in sorted(found) if _top(m, "services") or _top(m, "tooling")]
    assert not bad, "the kernel names services or tooling (ask shared.registry):\n" + "\n".join(bad)


def test_services_import_no_tooling_and_each_other_only_where_allowed():
    bad = []
    for path, found in _code("services"):
        own = path.relative_to(ROOT / "services").parts[0]
        for m in sorted(found):
            other = _service_of(m)
            if _top(m, "tooling"):
                bad.append("%s: %s (tooling is above the services)" % (path.relative_to(ROOT), m))
            elif other and other != own and other not in MAY_IMPORT.get(own, ()):
                bad.append("%s: %s (services meet through events)" % (path.relative_to(ROOT), m))
    assert not bad, "\n".join(bad)


def test_the_scan_sees_every_kind_of_import(tmp_path):
    """The checks above cannot pass by seeing nothing."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import services.units\n"
        "from services.exchange.anchors import check_outbox\n"
        "def f(name):\n"
        "    from tooling import backup\n"
        "    importlib.import_module('services.%s.application' % name)\n"
        "    importlib.import_module(f'services.{name}.domain')\n", encoding="utf-8")
    assert {"services.units", "services.exchange.anchors", "tooling", "tooling.backup",
            "services."} <= imports(sample)
    # and on the real tree: the tooling reaches into the exchange service, the console
    # into the units domain
    assert "services.exchange.anchors" in imports(ROOT / "tooling" / "cli.py")
    assert any("services.units.domain" in found for _p, found in _code("services/console"))


# -- a domain is pure ------------------------------------------------------------------------------
FRAMEWORKS = ("nameko", "sqlalchemy", "kombu", "eventlet")
_PROBE = ("import importlib, sys\n"
          "importlib.import_module(sys.argv[1])\n"
          "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[2:]))))")


def _frameworks_loaded_by(module: str) -> list[str]:
    """The frameworks importing ``module`` loads, in a fresh interpreter (so nothing imported
    before counts, and a framework reached through a helper module counts too)."""
    out = subprocess.run([sys.executable, "-c", _PROBE, module, *FRAMEWORKS], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.split()


def test_every_domain_loads_no_framework():
    """A service's ``domain.py``, with everything it imports, loads no nameko, SQLAlchemy or
    kombu: its rules are tested (``test_domain.py``) without a broker or a database."""
    domains = sorted(p.parent.name for p in (ROOT / "services").glob("*/domain.py"))
    assert {"units", "supervision", "education", "exchange"} <= set(domains)
    bad = {name: found for name in domains
           if (found := _frameworks_loaded_by("services.%s.domain" % name))}
    assert not bad, "a domain.py reaches a framework (keep rules pure): %s" % bad


def test_the_probe_sees_a_framework():
    """The check above cannot pass by seeing nothing: the nameko glue loads them all."""
    assert _frameworks_loaded_by("shared.service") == sorted(FRAMEWORKS)
