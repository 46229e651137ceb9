"""The morning check-in burst through the console: concurrent check-ins, one RPC.

Every morning a district's members tap 打卡 within minutes. One RPC per check-in cost
the console and education more than the check-in itself (the publish with its
confirm, the reply, a worker and a session lookup in education for each), so the
check-ins this process receives while a call is on its way go together as the next
call, ``education.check_in_many`` (``shared.combining``: no waiting for a batch to
fill, a lone check-in is a call of one), and education records them in one group
commit (``services/education/burst.py``). Each member is still answered on their own
(their streak, a repeat, not a member, no reminder today, their session refused); a
call that fails as a whole answers every check-in in it with that error, as its own
RPC would have, and none is sent twice.

The session is looked up once, by education: the check-in page is a
``session="service"`` page (``web.page``), so the console sends the token without
looking it up first, and each entry says ``own`` - the check-in is the session's own
member's, whose person id education takes from the session it has just checked. A
second lookup in the console, as every other page makes, was a combined round trip of
its own in front of this call, for an answer education gives again (the same user
directory: ended, revoked, disabled, expired are refused there at once, and nothing
is written for a refused entry).
"""
from __future__ import annotations

from nameko.exceptions import deserialize

from shared import logs
from shared.errors import NotFound, RuleViolation


def check_in_own(web) -> dict:
    """``check_in``'s answer for the session's own member, or its typed error raised. An
    answer decided for the member (their result, not a member, no reminder today) says
    education accepted the session: its idle expiry is then pushed back as the
    console's own check would have (``Web.session_held``); a refusal or a failed call
    pushes nothing."""
    def send(entries):
        answers = web.service.education.check_in_many(entries=entries)
        return [deserialize(a["error"]) if "error" in a else a["result"] for a in answers]
    try:
        done = web.dep.checkins.submit(send, {"data": {}, "own": True, "actor": {"token": web.token},
                                              "correlation_id": logs.correlation_id()})
    except (NotFound, RuleViolation):
        web.session_held()
        raise
    web.session_held()
    return done
