#!/bin/sh
# One node's identity, run once per node before its services start (idempotent):
# its signing key and registry entry, its broker's cluster name, and its identity
# written where the other nodes' federate step reads it. Rehearsal only: in a real
# deployment the identities travel between operators out of band.
set -eu
: "${NODE_ID:?}" "${NODE_LEVEL:?}" "${FEED_URL:?}"

parent=""
if [ -n "${NODE_PARENT:-}" ]; then parent="--parent $NODE_PARENT"; fi
# shellcheck disable=SC2086  # $parent is empty or two words on purpose
qinglian node init --node-id "$NODE_ID" --level "$NODE_LEVEL" $parent --feed-url "$FEED_URL"
qinglian federation cluster-name "qinglian-$NODE_ID"
# each service's own broker user (its password in var/, read by deploy/entrypoint.sh
# when the service starts): only units may publish on units.events, and so on
qinglian node broker-users
qinglian federation identity > "${IDENTITIES_DIR:-/identities}/$NODE_ID.json"
# the job runs as root (the identities volume); the services run as `qinglian` and
# must be able to read the key it just created
chown -R qinglian /app/var 2>/dev/null || true
echo "bootstrap: $NODE_ID ready"
