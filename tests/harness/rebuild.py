"""Rebuilt read models must equal the live ones: what every service's rebuild test does."""
from __future__ import annotations

import psycopg2.extensions
from sqlalchemy import select

from shared.projections import rebuild_many


def every_read_model(rt) -> dict:
    """Each read-model table of the runtime by name, its rows in a stable order."""
    with rt.read() as c:
        return {t.name: sorted((tuple(sorted(r.items())) for r in c.execute(select(t)).mappings()),
                               key=repr)
                for p in rt.projections for t in p.tables}


def wreck_and_rebuild(rt, copy: bool) -> None:
    """Empty every read model, then rebuild them all in one pass over the log, as
    ``qinglian projections rebuild`` does; ``copy``: without eventlet's wait callback, so
    the PostgreSQL flush is COPY (the command line's path) rather than statements."""
    with rt.engine.begin() as c:
        for p in rt.projections:
            for t in reversed(p.tables):
                c.execute(t.delete())
    with rt.read() as c:
        head = rt.store.head(c)
    saved = psycopg2.extensions.get_wait_callback()
    if copy:
        psycopg2.extensions.set_wait_callback(None)
    try:
        assert rebuild_many(rt.store, rt.projections) == head
    finally:
        psycopg2.extensions.set_wait_callback(saved)
