"""Typed errors, shared by domain code, the service layer and both APIs.

Each error knows its HTTP status; over nameko RPC each is registered with
``deserialize_to_instance`` (in ``shared.nameko``) so a caller gets the same typed
exception back instead of a ``RemoteError``. Pure Python: domain code may raise them.
"""
from __future__ import annotations


class QinglianError(Exception):
    status = 500
    code = "error"

    def __init__(self, message: str = "", fields: dict | None = None):
        super().__init__(message, fields or {})
        self.message = message
        self.fields = fields or {}

    def to_dict(self) -> dict:
        body = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body

    def __str__(self) -> str:
        if self.fields:
            return "%s: %s" % (self.message, self.fields)
        return self.message


class BadInput(QinglianError):
    """Malformed input: field messages say what is wrong. Nothing was written."""

    status = 400
    code = "bad_input"


class Unauthenticated(QinglianError):
    status = 401
    code = "unauthenticated"


class Forbidden(QinglianError):
    """The actor's role or unit scope does not allow this."""

    status = 403
    code = "forbidden"


class NotFound(QinglianError):
    status = 404
    code = "not_found"


class Conflict(QinglianError):
    """The request is well formed but the record's state does not allow it."""

    status = 409
    code = "conflict"


class RuleViolation(Conflict):
    """A domain rule refused the command (e.g. verifying a rectification with no evidence)."""

    code = "rule_violation"


class ConcurrencyError(Conflict):
    """Someone else appended to the same stream first: reload and try again."""

    code = "version_conflict"


class StoreBusy(QinglianError):
    """The event store's writer lock could not be taken in time (lock timeout)."""

    status = 503
    code = "store_busy"


ALL_ERRORS = (
    QinglianError, BadInput, Unauthenticated, Forbidden, NotFound, Conflict,
    RuleViolation, ConcurrencyError, StoreBusy,
)
