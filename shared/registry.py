"""The node's processes, as the installed package declares them: the ``qinglian.services``
entry points of ``pyproject.toml``. The kernel and the tooling find services here and
nowhere else, so no kernel module names a service.

    [project.entry-points."qinglian.services"]
    units = "services.units.service:UnitsService"     # name = "<package>.service:<nameko class>"

A service whose package has an ``application`` module keeps an event log (its commands,
queries and projections are ``<package>.application:app``; its events are declared in
``<package>.domain``). The console has none: it is a process of the node, not a log.

Entry points are written at install time: after editing them, ``make install`` (its
stamp depends on pyproject.toml). ``python -m shared.registry <service>`` prints what
``nameko run`` takes and the service's default port (``deploy/entrypoint.sh`` asks it).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType

GROUP = "qinglian.services"


class RegistryError(LookupError):
    """No such service, or none declared (the package's metadata is missing or stale)."""


@dataclass(frozen=True)
class Service:
    name: str
    target: str  # "<package>.service:<Class>", as `nameko run` takes it

    @property
    def package(self) -> str:
        return self.target.partition(":")[0].rpartition(".")[0]

    @property
    def keeps_log(self) -> bool:
        return importlib.util.find_spec(self.package + ".application") is not None

    def module(self, name: str) -> ModuleType | None:
        """``<package>.<name>`` (e.g. ``domain``), or None when the service has none; an
        import error inside an existing module is raised, not hidden."""
        if importlib.util.find_spec("%s.%s" % (self.package, name)) is None:
            return None
        return importlib.import_module("%s.%s" % (self.package, name))

    def application(self):
        """Its ``Application`` (commands, queries, projections)."""
        module = self.module("application")
        if module is None:
            raise RegistryError("%s keeps no event log (it has no application)" % self.name)
        return module.app


@lru_cache(maxsize=None)
def processes() -> tuple[Service, ...]:
    """Every declared process, in the order of their default ports (the order `qinglian
    run` starts them and every listing shows them; entry points come sorted by name)."""
    from shared.config import DEFAULT_PORTS
    found = [Service(ep.name, ep.value) for ep in entry_points(group=GROUP)]
    if not found:
        raise RegistryError("没有登记任何服务：请重新安装 (`make install`) "
                            "(no %s entry points: the package is not installed, or stale)" % GROUP)
    unported = [s.name for s in found if s.name not in DEFAULT_PORTS]
    if unported:
        raise RegistryError("服务没有默认端口：%s (add it to shared.config.DEFAULT_PORTS)"
                            % "、".join(unported))
    return tuple(sorted(found, key=lambda s: DEFAULT_PORTS[s.name]))


@lru_cache(maxsize=None)
def services() -> tuple[str, ...]:
    """The names of the services that keep an event log (each has its own database)."""
    return tuple(s.name for s in processes() if s.keeps_log)


def names() -> tuple[str, ...]:
    """Every process's name, the console's too."""
    return tuple(s.name for s in processes())


def get(name: str) -> Service:
    for s in processes():
        if s.name == name:
            return s
    raise RegistryError("没有这个服务：%s（可选：%s）(no service %r)" % (name, "、".join(names()), name))


def application(name: str):
    return get(name).application()


def owner(module: str) -> str | None:
    """The process whose package holds ``module`` (None: none's, e.g. the kernel's)."""
    return next((s.name for s in processes()
                 if module == s.package or module.startswith(s.package + ".")), None)


def main(argv=None) -> int:
    from shared.config import DEFAULT_PORTS
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in services():
        print("services: %s" % ", ".join(services()), file=sys.stderr)
        return 64
    service = get(args[0])
    print(service.target, DEFAULT_PORTS[service.name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
