"""节点状态 (node-admins only): this node's peers and their keys' fingerprints, the
broker's federation links and their state, lag per origin, the last feed sync, rejected
messages by reason, and the node's users, tokens and sign-in records (with a link to
用户与登录, where they are managed).

Federation facts come from the exchange service (RPC ``federation_state``); the links and
queues from this node's broker management API (``RABBITMQ_API_URL``, else the AMQP URI's
host on port 15672). Either may be down: the page then says so in Chinese and shows the
rest.
"""
from __future__ import annotations

import time

from services.console.pages import NODE_ADMIN
from services.console.signin import OUTCOMES
from services.console.web import page
from shared import config
from shared.errors import QinglianError

SIGN_IN_SHOWN = 200  # sign-in records summarised on the page (the full list: 用户与登录)


def _federation(web) -> tuple[dict | None, str | None]:
    try:
        return web.service.exchange.federation_state(actor=web._proof()), None
    except QinglianError:
        return None, "交换服务拒绝了请求，请确认您的登录仍然有效。"
    except Exception:  # noqa: BLE001 - the service is not running or not reachable
        return None, "交换服务（五联五互）没有应答：可能尚未启动。联邦状态暂不可用。"


def _broker(web) -> tuple[list, list, str | None]:
    from shared.federation.broker import BrokerAdmin, BrokerError, vhost_of
    cfg = web.dep.container.config
    amqp = config.amqp_uri(cfg)
    try:
        api = BrokerAdmin.for_node(amqp, config.rabbit_api_url(cfg), timeout=3, deadline=6,
                                   connect_grace=1)
    except ValueError:
        return [], [], "消息服务器管理接口地址（RABBITMQ_API_URL）填写有误。"
    vhost = vhost_of(amqp)
    try:
        queues = api.queues(vhost)
        try:
            links = api.link_status(vhost)
        except BrokerError as exc:
            if exc.status == 404:
                return [], queues, "消息服务器未启用联邦管理插件，无法查看联邦链路。"
            raise
        return links, queues, None
    except BrokerError:
        return [], [], "无法连接消息服务器管理接口，链路和队列状态暂不可用。"
    finally:
        api.close()


def _accounts(web) -> dict:
    users = web.users.list_users()
    now_us = int(time.time() * 1_000_000)
    tokens = active = 0
    for u in users:
        for t in web.users.list_tokens(u["user_id"]):
            tokens += 1
            if not t["revoked"] and (t["expires_at_us"] or now_us + 1) > now_us:
                active += 1
    records = web.dep.signin.recent(SIGN_IN_SHOWN)
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    return {"users": len(users), "disabled": sum(1 for u in users if u.get("disabled")),
            "tokens": tokens, "active_tokens": active, "records": records[:10],
            "outcomes": outcomes, "shown": len(records)}


@page("/admin/status", roles=NODE_ADMIN)
def node_status(web):
    fed, fed_error = _federation(web)
    links, queues, broker_error = _broker(web)
    peers = {p["node_id"]: p for p in (fed or {}).get("peers", [])}
    origins = []
    for o in (fed or {}).get("inbox", []):
        origins.append(dict(o, known=o["origin"] in peers))
    return web.render("status_node.html", fed=fed, fed_error=fed_error, links=links,
                      queues=[{"name": q.get("name", ""),
                               "messages_ready": int(q.get("messages_ready") or 0),
                               "messages_unacknowledged": int(q.get("messages_unacknowledged") or 0),
                               "consumers": int(q.get("consumers") or 0)}
                              for q in sorted(queues, key=lambda q: q.get("name", ""))],
                      broker_error=broker_error, peers=list(peers.values()), origins=origins,
                      accounts=_accounts(web), outcome_names=OUTCOMES,
                      node_name=_namer(web))


def _namer(web):
    """A node as the page names it: its Chinese name (QINGLIAN_NODE_NAMES) and its id."""
    names = config.node_names(web.dep.container.config)
    return lambda node_id: ("%s（%s）" % (names[node_id], node_id)) if node_id in names else (node_id or "")
