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
"""
from __future__ import annotations

from nameko.exceptions import deserialize

from shared import logs


def check_in(web, data: dict) -> dict:
    """``check_in``'s answer for the signed-in member, or its typed error raised."""
    def send(entries):
        answers = web.service.education.check_in_many(entries=entries)
        return [deserialize(a["error"]) if "error" in a else a["result"] for a in answers]
    return web.dep.checkins.submit(send, {"data": data, "actor": {"token": web.token},
                                          "correlation_id": logs.correlation_id()})
