"""A node's signing key and its own entry in the registry.

One Ed25519 key per node, shared by the node's services, at
``<QINGLIAN_VAR>/<NODE_ID>/keys/node.key`` (PKCS#8 PEM, mode 0600). ``qinglian node
init`` creates it with ``init_this_node``; the exchange service loads it with
``load_node_key`` and refuses to start without it rather than inventing a key its peers
have never been told about (a fresh key would make every peer reject this node).

``identity()`` is what an operator sends to the peers' operators out of band (node id,
level, parent, public key, feed URL); they record it with ``qinglian node trust``.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import config as node_config
from shared.db import make_engine

from .envelope import (
    NODE_LEVELS,
    generate_keypair,
    load_private_key,
    public_key_b64,
    save_private_key,
    validate_node_id,
)
from .registry import NodeRecord, NodeRegistry

__all__ = ["node_key_path", "load_node_key", "load_or_create_node_key", "node_registry",
           "init_this_node", "identity", "MissingNodeKey"]


class MissingNodeKey(FileNotFoundError):
    """The node has no signing key yet: run ``qinglian node init`` first."""


def node_key_path(config: dict | None = None) -> Path:
    return node_config.var_dir(config) / node_config.node_id(config) / "keys" / "node.key"


def load_node_key(config: dict | None = None) -> Ed25519PrivateKey:
    path = node_key_path(config)
    if not path.exists():
        raise MissingNodeKey("no signing key for node %r at %s: run `qinglian node init`"
                             % (node_config.node_id(config), path))
    return load_private_key(path)


def load_or_create_node_key(config: dict | None = None) -> Ed25519PrivateKey:
    """The node's key, created (0600) on first use. Creating is safe against a second
    process doing the same at once: the file is written under a temporary name and
    linked into place only if nobody got there first; the loser loads the winner's."""
    path = node_key_path(config)
    if path.exists():
        return load_private_key(path)
    private, _ = generate_keypair()
    tmp = path.with_name("%s.%d.tmp" % (path.name, os.getpid()))
    save_private_key(private, tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return load_private_key(path)


def node_registry(config: dict | None = None, **kw) -> NodeRegistry:
    """The registry of trusted nodes on this node's database."""
    return NodeRegistry(make_engine(node_config.node_database_url(config)), **kw)


def init_this_node(config: dict | None = None, level: str | None = None,
                   parent: str | None = None, feed_url: str | None = None,
                   registry: NodeRegistry | None = None) -> NodeRecord:
    """Create the key if needed, trust this node's own public key and mark the row as
    this node. Idempotent: running it again with the same key changes nothing but the
    level, parent and feed URL."""
    node_id = validate_node_id(node_config.node_id(config))
    level = level or node_config.node_level(config)
    if level not in NODE_LEVELS:
        raise ValueError("level must be 'city' or 'district' (got %r)" % (level,))
    parent = parent if parent is not None else node_config.node_parent(config)
    if level == "city":
        parent = None
    key = load_or_create_node_key(config)
    own = registry or node_registry(config)
    record = own.trust(node_id, level, parent, public_key_b64(key), feed_url)
    own.set_this_node(node_id)
    return record


def identity(config: dict | None = None, registry: NodeRegistry | None = None) -> dict:
    """This node as its peers must record it (``qinglian node trust`` arguments)."""
    reg = registry or node_registry(config)
    me = reg.this_node()
    key = load_node_key(config)
    if me is None:
        return {"node_id": node_config.node_id(config), "level": node_config.node_level(config),
                "parent": node_config.node_parent(config), "public_key": public_key_b64(key),
                "feed_url": None}
    if me.public_key != public_key_b64(key):
        raise ValueError("the registry's key for %s is not the key in %s"
                         % (me.node_id, node_key_path(config)))
    return {"node_id": me.node_id, "level": me.level, "parent": me.parent,
            "public_key": me.public_key, "feed_url": me.feed_url}
