"""Input fields every service uses, so an id or a name is validated the same way everywhere."""
from __future__ import annotations

from marshmallow import fields, validate

# ids appear in URLs, routing keys and "<a>/<b>" composite keys: keep them plain
ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def Id(**kw) -> fields.String:  # noqa: N802 - reads like a field type in schemas
    return fields.String(validate=validate.Regexp(ID_RE, error="1-100 letters, digits, _ . -"), **kw)


def Name(n: int = 200, **kw) -> fields.String:  # noqa: N802
    """Non-empty text of at most ``n`` characters."""
    return fields.String(validate=validate.Length(1, n), **kw)


def DateString(**kw) -> fields.String:  # noqa: N802
    """A calendar day as ``YYYY-MM-DD``, kept as a string (how events store it)."""
    return fields.String(validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                                                  error="YYYY-MM-DD"), **kw)


def Month(**kw) -> fields.String:  # noqa: N802
    return fields.String(validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="YYYY-MM"), **kw)
