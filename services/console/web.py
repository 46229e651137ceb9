"""The console's request cycle: route, session, CSRF, role, render.

One ``Web`` per request. A page is a function registered with ``@page(rule, ...)`` in
``services.console.pages``; it reads through ``web.query`` / ``web.command`` (nameko RPC
to a service with the session token as the actor proof) and answers with
``web.render`` or ``web.redirect``. The services stay the authority: a page only hides
what the user's role may not do; whatever is posted, the service decides.

* Session: cookie ``ql_session`` (HttpOnly, SameSite=Lax, Secure when configured), a
  ``qs_`` token of the node's user directory, touched on every request (idle expiry).
* CSRF: every POST carries ``_csrf`` (form field) or ``X-CSRF-Token`` (htmx), derived
  from the session token; without it the answer is 403 and nothing is called. The
  sign-in form, having no session yet, uses a double-submit cookie.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlencode

import eventlet
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from werkzeug.exceptions import MethodNotAllowed, NotFound as RouteNotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Response

from shared import labels
from shared.auth import SESSION_TOKEN_PREFIX
from shared.errors import BadInput, Forbidden, NotFound, QinglianError, Unauthenticated

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SESSION_COOKIE = "ql_session"
LOGIN_COOKIE = "ql_login"
FLASH_COOKIE = "ql_flash"

ENV = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                  autoescape=select_autoescape(default=True, default_for_string=True),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters["zh_date"] = labels.zh_date
ENV.filters["zh_datetime"] = labels.zh_datetime
ENV.filters["label"] = lambda code, enum: labels.label(enum, code)
ENV.filters["percent"] = lambda v: "%.1f%%" % (100 * (v or 0))
ENV.globals["choices"] = lambda enum: labels.catalogue()[enum].options()


def json_health(node_id: str) -> Response:
    return Response(json.dumps({"service": "console", "node": node_id}), mimetype="application/json")


# -- the page registry ------------------------------------------------------------------------
@dataclass
class Page:
    fn: object
    roles: tuple | None   # None: any signed-in user
    public: bool          # no sign-in (the published 微权力清单, the sign-in page, assets)
    csrf: str             # "session" | "login" | "none" (GET-only pages)
    session: str = "console"  # "service": see ``page``


PAGES: dict[str, Page] = {}
RULES: list[Rule] = []


def page(rule: str, methods=("GET",), roles: tuple | None = None, public: bool = False,
         csrf: str = "session", session: str = "console"):
    """``session="service"``: a POST of this page is one call to a service carrying the
    session token, and that service checks the session (every service does, with the
    same user directory, as strictly as the console); the console looks it up only if
    the page reads ``web.actor``. The morning check-in: one session lookup per check-in
    instead of two (docs/benchmarks.md, *the check-in's one session lookup*)."""
    def deco(fn):
        endpoint = fn.__name__
        if endpoint in PAGES:
            raise ValueError("page %s declared twice" % endpoint)
        PAGES[endpoint] = Page(fn, roles, public, csrf, session)
        RULES.append(Rule(rule, endpoint=endpoint, methods=list(methods)))
        return fn
    return deco


_map: Map | None = None


def routes() -> Map:
    global _map
    if _map is None:
        from services.console import pages  # noqa: F401 - registers every page
        _map = Map(RULES, strict_slashes=False)
    return _map


_matched: dict[tuple[str, str], tuple[str, dict]] = {}


def matched(request) -> tuple[str, dict]:
    """The page (endpoint, URL arguments) for the request's method and path, raising
    werkzeug's NotFound or MethodNotAllowed. The routes depend on nothing else, so each
    (method, path) is matched once and then looked up (a matcher walk, ~2 % of a
    check-in's CPU); at most 10,000 of them are kept."""
    key = (request.method, request.path)
    hit = _matched.get(key)
    if hit is None:
        hit = routes().bind_to_environ(request.environ).match()
        if len(_matched) >= 10_000:
            _matched.clear()
        _matched[key] = hit
    return hit[0], dict(hit[1])


# -- menus follow the role -----------------------------------------------------------------
# The sidebar in groups, so an office worker finds a page by the kind of work it is
# (主体责任, 监督, 教育, 五联五互, 系统). Each entry: (title, url, roles that see it; None = all).
MENU = (
    (None, (
        ("工作台", "/", None),
    )),
    ("主体责任", (
        ("单位与责任", "/units", None),
        ("责任书", "/letters", None),
        ("廉政承诺", "/pledges", None),
        ("纪检委员", "/roster/discipline", None),
        ("微权力清单", "/micro-power", None),
        ("任务跟踪", "/tasks", None),
        ("推进会", "/meetings", None),
        ("模范科室评选", "/exemplary", None),
    )),
    ("监督检查", (
        ("检查督导", "/inspections", None),
        ("整改", "/rectifications", None),
        ("群众监督", "/public-reports", ("node-admin", "inspector")),
        ("廉政风险", "/risk", None),
        ("重点岗位监督", "/key-posts", None),
        ("专项整治", "/campaigns", None),
        ("政治生态研判", "/ecology", None),
        ("四种形态", "/discipline", None),
    )),
    ("教育提醒", (
        ("廉洁提醒打卡", "/checkin", None),
        ("警示教育月月行", "/warning-education", None),
        ("学习教育日历", "/calendar", None),
        ("廉政宣传周更新", "/publicity", None),
        ("廉洁通知", "/notices", None),
        ("典型案例通报", "/case-bulletins", None),
        ("廉政谈话与年轻干部", "/talks", ("node-admin", "unit-admin", "inspector")),
        ("精准推送", "/tailoring", None),
        ("献一策", "/suggestions", None),
    )),
    ("五联五互", (
        ("经验联享", "/exchange/experiences", None),
        ("案例联编", "/exchange/cases", None),
        ("活动联办", "/exchange/activities", None),
        ("典型联树", "/exchange/exemplars", None),
        ("难题联解", "/exchange/problems", None),
    )),
    ("市区协同", (
        ("督办", "/oversight", None),
        ("上下互比", "/city/compare", None),
        ("基层减负", "/relief", None),
    )),
    ("系统管理", (
        ("用户与登录", "/admin/users", ("node-admin",)),
        ("节点状态", "/admin/status", ("node-admin",)),
    )),
)

WRITERS = ("node-admin", "unit-admin")
CITY_PAGES = "/city/"  # in the menu of city nodes only


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"csrf", hashlib.sha256).hexdigest()[:40]


class Redirect(Exception):
    def __init__(self, location: str):
        self.location = location


class Web:
    def __init__(self, service, request):
        self.service = service
        self.dep = service.console
        self.settings = self.dep.settings
        self.users = self.dep.users
        self.request = request
        self.token = request.cookies.get(SESSION_COOKIE)
        self._actor = None
        self._deferred = False  # the session is checked by the service the page calls
        self._user = None
        self.cookies: list[tuple] = []  # (name, value, kwargs) set on the response
        self.flash = self._take_flash()

    # -- the cycle ---------------------------------------------------------------------------
    def handle(self) -> Response:
        try:
            endpoint, args = matched(self.request)
        except RouteNotFound:
            return self.error(404, "页面不存在")
        except MethodNotAllowed:
            return self.error(405, "不支持这种请求方式")
        spec = PAGES[endpoint]
        try:
            if not spec.public:
                if spec.session == "service" and self.request.method == "POST":
                    self._token_check()
                    self._deferred = True
                else:
                    self._sign_in_check()
            if self.request.method == "POST":
                self._csrf_check(spec.csrf)
            if spec.roles and not self.actor.has(*spec.roles):
                raise Forbidden("您的角色无权打开此页面")
            response = spec.fn(self, **args)
        except Redirect as r:
            response = self.redirect(r.location)
        except Unauthenticated:
            if self.token:
                self.dep.signin.record(self.users.session_user(self.token) or "", self.client, "expired")
            self.cookies.append((SESSION_COOKIE, "", {"expires": 0}))
            target = "/login?" + urlencode({"next": self.request.full_path.rstrip("?")})
            if self.request.headers.get("HX-Request"):
                response = Response("", 401, headers={"HX-Redirect": target})
            else:
                response = self.redirect(target)
        except Forbidden as exc:
            response = self.error(403, exc.message if _readable(exc.message) else "无权访问此页面或执行此操作")
        except NotFound as exc:
            response = self.error(404, exc.message if _readable(exc.message) else "记录不存在或不在您的管理范围内")
        for name, value, kw in self.cookies:
            response.set_cookie(name, value, httponly=True, samesite="Lax",
                                secure=self.settings.secure_cookie, path="/", **kw)
        return _hardened(response)

    @property
    def client(self) -> str:
        return self.request.remote_addr or "unknown"

    def _token_check(self) -> None:
        """What is refused without a lookup: no token, or not a console session's."""
        if not self.token:
            raise Unauthenticated()
        if not self.token.startswith(SESSION_TOKEN_PREFIX):
            raise Unauthenticated("这不是控制台会话令牌")

    def _sign_in_check(self) -> None:
        """The session's actor: checked on every request (ended, revoked, expired:
        refused at once)."""
        self._token_check()
        # the sessions of concurrent requests are looked up together (shared.combining)
        self._actor = self.dep.sessions.submit(self.users.authenticate_many, self.token)
        self.session_held()

    def session_held(self) -> None:
        """The session was accepted (by the console's lookup, or by the service a
        ``session="service"`` page called): its idle expiry is pushed back at most once
        per ``touch_every`` seconds per process, and not by this request: it notes the
        touch with its own time and ``ConsoleDependency``'s flusher writes every noted
        touch in one transaction a second later (a morning's check-ins would otherwise
        pay a committed write each). A session may thus end up to that many seconds
        before a full idle period (or a second's touches earlier, if the process dies) -
        never later: the expiry is pushed from the request's time, never past the
        session's absolute limit, and an ended or lapsed session is not revived."""
        touched = self.dep.touched
        now = time.monotonic()
        if now - touched.get(self.token, -1e9) >= self.dep.touch_every:
            if len(touched) > 50_000:  # one entry per recently active session
                touched.clear()
            touched[self.token] = now
            self.dep.note_touch(self.token)

    @property
    def actor(self):
        """The signed-in user's ``Actor`` (None before the sign-in check, and on public
        pages). A ``session="service"`` POST looks the session up here, when the page
        first needs it (a redirect after the service's answer needs none)."""
        if self._deferred:
            self._deferred = False
            self._sign_in_check()
        return self._actor

    @property
    def user(self) -> dict | None:
        """The signed-in user's record (name), read when a page shows it: a redirect
        (every form's answer) needs none."""
        if self._user is None and self.actor is not None:
            self._user = self.users.get(self.actor.user_id)
        return self._user

    def _csrf_check(self, kind: str) -> None:
        sent = self.request.form.get("_csrf") or self.request.headers.get("X-CSRF-Token") or ""
        if kind == "login":
            expected = self.request.cookies.get(LOGIN_COOKIE) or ""
        elif kind == "session" and self.token:
            expected = csrf_for(self.token)
        else:
            expected = ""
        if not expected or not hmac.compare_digest(sent, expected):
            raise Forbidden("请求缺少有效的安全校验码，已被拒绝，未做任何修改。请刷新页面后重新提交。")

    # -- answers -------------------------------------------------------------------------------
    def render(self, template: str, status: int = 200, **context) -> Response:
        context.setdefault("errors", {})
        body = ENV.get_template(template).render(web=self, **context)
        return Response(body, status=status, mimetype="text/html")

    def fragment(self, template: str, **context) -> Markup:
        """A part of a page rendered without ``web`` (so the same for every user), for a
        page to keep and place into what it renders (``{{ body }}``)."""
        return Markup(ENV.get_template(template).render(**context))

    def redirect(self, location: str, flash: str | None = None) -> Response:
        if flash:
            self.cookies.append((FLASH_COOKIE, quote(flash), {"max_age": 60}))
        if self.request.headers.get("HX-Request"):
            return Response("", 200, headers={"HX-Redirect": location})
        return Response("", 303, headers={"Location": location})

    def error(self, status: int, message: str) -> Response:
        if self._deferred:  # the page's menu needs the actor; a refused session shows none
            try:
                _ = self.actor
            except Unauthenticated:
                pass
        return self.render("error.html", status=status, message=message)

    def _take_flash(self) -> str | None:
        value = self.request.cookies.get(FLASH_COOKIE)
        if value:
            self.cookies.append((FLASH_COOKIE, "", {"expires": 0}))
            return unquote(value)[:500]
        return None

    # -- what templates use ------------------------------------------------------------------
    @property
    def csrf(self) -> str:
        return csrf_for(self.token) if self.token else ""

    def can(self, *roles: str) -> bool:
        return self.actor is not None and self.actor.has(*roles)

    @property
    def writer(self) -> bool:
        return self.can(*WRITERS)

    def menu(self) -> list[tuple]:
        """The sidebar's groups this user sees: [(group title or None, [(title, url)])];
        a group with no entry for this user is left out."""
        groups = []
        for group, entries in MENU:
            shown = [(t, u) for t, u, roles in entries if (roles is None or self.can(*roles))
                     and (not u.startswith(CITY_PAGES) or self.city_node)]
            if shown:
                groups.append((group, shown))
        return groups

    @property
    def city_node(self) -> bool:
        """This node is a city (its /city/ pages compare the districts below it)."""
        from shared import config
        return config.node_level(self.dep.container.config) == "city"

    def role_names(self) -> str:
        return "、".join(labels.label("auth.ROLES", r) for r in self.actor.roles)

    # -- calling the services --------------------------------------------------------------------
    def _proof(self) -> dict | None:
        return {"token": self.token} if self.token and self.actor else None

    def query(self, service: str, name: str, params: dict | None = None, public: bool = False):
        proxy = getattr(self.service, service)
        return proxy.query(name=name, params=params or {}, actor=None if public else self._proof())

    def query_async(self, service: str, name: str, params: dict | None = None):
        """Send a query now, read its answer later (``.result()``, errors as ``query``
        raises them - an absent service's ``UnknownService`` too): a page's independent
        queries then wait for each other's replies only once. Each is published from a
        greenthread of its own, as publishing waits for the broker's confirm (one round
        trip each): the page's queries wait for their confirms together too."""
        proxy = getattr(self.service, service)
        return _Asked(proxy.query.call_async, name=name, params=params or {},
                      actor=self._proof())

    def command(self, service: str, name: str, data: dict):
        proxy = getattr(self.service, service)
        return proxy.execute(command=name, data=data, actor=self._proof())

    def attempt(self, service: str, name: str, data: dict):
        """Run a command; ``(result, None)`` or ``(None, errors)`` with Chinese messages.
        A form field left blank is a value not given (the service's default, or 必填)."""
        data = {k: v for k, v in data.items() if v != ""}
        try:
            return self.command(service, name, data), None
        except (Forbidden, NotFound, Unauthenticated):
            raise
        except QinglianError as exc:
            return None, describe(exc)

    # -- form input ----------------------------------------------------------------------------
    def form(self, name: str, default: str = "") -> str:
        return (self.request.form.get(name) or default).strip()

    def arg(self, name: str, default: str = "") -> str:
        return (self.request.args.get(name) or default).strip()

    def static(self, path: str) -> Response:
        return send_from_directory(str(STATIC), path, self.request.environ, max_age=3600)


class _Asked:
    """A query being published (``Web.query_async``): its answer once it is sent and
    answered. A refusal to send (no such service) is raised by ``result``, not in the
    greenthread (the hub would print it)."""

    def __init__(self, call_async, **kwargs):
        self._sending = eventlet.spawn(self._send, call_async, kwargs)

    @staticmethod
    def _send(call_async, kwargs):
        try:
            return call_async(**kwargs), None
        except Exception as exc:  # noqa: BLE001 - raised again by result()
            return None, exc

    def result(self):
        reply, refused = self._sending.wait()
        if refused is not None:
            raise refused
        return reply.result()


def _hardened(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'")
    return response


def refusal_page(exc: QinglianError) -> Response:
    """The page for a body refused before any page ran (``ConsoleHttp``: too large, too
    slow, too many at once), with the refusal's status: no session was looked at, so the
    page has no menu."""
    body = ENV.get_template("error.html").render(
        web=None, errors={}, message="%s，未做任何修改，请重新提交。" % exc.message.rstrip("。"))
    return _hardened(Response(body, status=exc.status, mimetype="text/html"))


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


# -- errors a person reads ------------------------------------------------------------------------
FIELD_NAMES = {
    "name": "名称", "kind": "单位类型", "level": "单位层级", "parent_id": "上级单位",
    "unit_id": "单位", "reason": "原因", "post": "岗位", "person_id": "人员", "role": "职务",
    "period": "期间", "issuer_unit_id": "下达单位", "target_unit_id": "签订单位",
    "signatory_role": "签订人职务", "content": "内容", "signed_on": "签订日期",
    "published_on": "发布日期", "duties": "岗位职责", "power_boundary": "权力边界",
    "steps": "办理流程", "accountability": "责任追究", "password": "密码",
    "new_post": "新岗位", "effective_on": "生效日期", "deadline": "整改期限",
    "description": "问题描述", "source": "问题来源", "severity": "严重程度",
    "responsible_role": "责任人职务", "requirement": "整改要求", "note": "说明",
    "title": "标题", "items": "条目", "planned_on": "计划日期", "scores": "评分",
    "score": "得分", "summary": "反馈内容", "told": "被反馈人", "told_at": "反馈时间",
    "standard": "标准", "held_on": "会议日期", "convener_unit_id": "召集单位",
    "scope_unit_id": "整治范围", "starts_on": "开始日期", "ends_on": "结束日期",
    "four_winds": "四风问题类别",
    "course": "培训课程", "trained_on": "培训日期", "hours": "学时", "organiser": "举办单位",
    "text": "条目内容", "owner_post": "责任岗位", "from_revision": "比较的版本",
    "to_revision": "比较的版本", "unit_ids": "被检查单位", "criteria": "考核标准",
    "dimensions": "指标体系", "indicators": "指标", "weight": "权重", "max_score": "满分",
}
# a field whose values are one enum: its error names the labels, never the codes
FIELD_ENUMS = {"kind": "units.UNIT_KINDS", "level": "units.UNIT_LEVELS",
               "role": "units.PERSON_ROLES", "signatory_role": "units.PERSON_ROLES",
               "source": "supervision.FINDING_SOURCES", "severity": "supervision.SEVERITIES",
               "responsible_role": "supervision.RESPONSIBLE_ROLES",
               "four_winds": "supervision.FOUR_WINDS"}


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text or "")


def _flatten(messages, prefix="") -> list[tuple[str, str]]:
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            nested_index = isinstance(key, int) or str(key).isdigit()
            out += _flatten(value, prefix if nested_index else str(key))
    elif isinstance(messages, (list, tuple)):
        for m in messages:
            out += _flatten(m, prefix)
    else:
        out.append((prefix, str(messages)))
    return out


def describe(exc: QinglianError) -> dict:
    """Field -> Chinese message (``_`` for the form as a whole)."""
    errors: dict[str, str] = {}
    for key, message in _flatten(exc.fields or {}):
        field = key.split(".")[-1] if key else key  # "scores.0.note" names the field note
        enum = FIELD_ENUMS.get(field)
        if enum and ("one of" in message or "之一" in message):
            text = labels.catalogue()[enum].error()
        elif _readable(message):
            text = message
        elif "required" in message.lower() or "missing" in message.lower():
            text = "必填"
        elif "length" in message.lower() or "characters" in message.lower():
            text = "长度不符合要求"
        else:
            text = "填写有误"
        name = FIELD_NAMES.get(field, "")
        errors.setdefault(field or "_", ("%s: %s" % (name, text)) if name else text)
    if isinstance(exc, BadInput):
        errors.setdefault("_", "输入有误，请按提示修改后再提交")
    else:
        errors.setdefault("_", exc.message if _readable(exc.message) else {
            409: "记录当前的状态不允许此操作"}.get(exc.status, "操作未成功，请稍后重试"))
    return errors


def _readable(text: str) -> bool:
    """Chinese, and no code or id in it (those the person did not type and cannot read):
    a run of three or more letters, digits or ``_`` with a letter in it, or eight digits
    and more. Numbers a person reads (0 到 100, 2026年) stay."""
    if not _chinese(text):
        return False
    return all(token.isdigit() and len(token) < 8
               for token in re.findall(r"[A-Za-z0-9_]{3,}", text))
