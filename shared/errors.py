"""Typed errors, shared by domain code, the service layer and both APIs.

Each error knows its HTTP status; over nameko RPC each is registered with
``deserialize_to_instance`` (in ``shared.nameko``) so a caller gets the same typed
exception back instead of a ``RemoteError``. Pure Python: domain code may raise them.
"""
from __future__ import annotations


class QinglianError(Exception):
    status = 500
    code = "error"
    default_message = "服务内部错误，请稍后重试或联系管理员"  # what a person reads (Chinese)

    def __init__(self, message: str = "", fields: dict | None = None):
        message = message or self.default_message
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
    default_message = "输入有误"


class Unauthenticated(QinglianError):
    status = 401
    code = "unauthenticated"
    default_message = "需要登录（请提供有效的令牌）"


class Forbidden(QinglianError):
    """The actor's role or unit scope does not allow this."""

    status = 403
    code = "forbidden"
    default_message = "无权执行此操作"


class NotFound(QinglianError):
    status = 404
    code = "not_found"
    default_message = "记录不存在"


class Conflict(QinglianError):
    """The request is well formed but the record's state does not allow it."""

    status = 409
    code = "conflict"
    default_message = "记录当前的状态不允许此操作"


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
    default_message = "系统繁忙，请稍后重试"


class Unavailable(QinglianError):
    """A dependency (database, broker) failed: the details go to the log, never to the
    caller, who only learns to try again later. Nothing was written."""

    status = 503
    code = "unavailable"
    default_message = "服务暂时不可用（数据库或消息服务故障），请稍后重试"


# -- refusals of the HTTP request itself, before any operation runs ---------------------
class UnsupportedMediaType(QinglianError):
    status = 415
    code = "unsupported_media_type"
    default_message = "请求体须为 JSON（Content-Type: application/json）"


class PayloadTooLarge(QinglianError):
    status = 413
    code = "payload_too_large"
    default_message = "请求体过大"


class RequestTimeout(QinglianError):
    status = 408
    code = "request_timeout"
    default_message = "请求体发送超时"


ALL_ERRORS = (
    QinglianError, BadInput, Unauthenticated, Forbidden, NotFound, Conflict,
    RuleViolation, ConcurrencyError, StoreBusy, Unavailable, UnsupportedMediaType,
    PayloadTooLarge, RequestTimeout,
)
