#!/bin/sh
# One node's side of the star, after every node ran bootstrap.sh: trust the peers
# (from the identities they exported), and create the broker links that end here.
#   city:      a restricted link user per district (what that district may pull), and
#              one link from each district's broker (all three exchanges, max-hops 1);
#   district:  one link from the city's broker (qinglian.shared + qinglian.named,
#              max-hops 2), logging in as the user the city made for this district.
# Idempotent: an unchanged link is left running (re-creating one would drop its buffer).
set -eu
: "${NODE_ID:?}" "${NODE_LEVEL:?}" "${DISTRICTS:?}"

trust() {  # trust <identity file>
    python - "$1" <<'PY'
import json, subprocess, sys
i = json.load(open(sys.argv[1]))
cmd = ["qinglian", "node", "trust", i["node_id"], "--level", i["level"],
       "--public-key", i["public_key"]]
if i.get("parent"):
    cmd += ["--parent", i["parent"]]
if i.get("feed_url"):
    cmd += ["--feed-url", i["feed_url"]]
sys.exit(subprocess.call(cmd))
PY
}

for file in /identities/*.json; do
    peer=$(basename "$file" .json)
    [ "$peer" = "$NODE_ID" ] || trust "$file"
done

if [ "$NODE_LEVEL" = city ]; then
    for d in $DISTRICTS; do
        pw=$(printf '%s' "$d" | tr 'a-z-' 'A-Z_')
        eval "password=\${LINK_PASSWORD_$pw:?}"
        qinglian federation link-user --district "$d" --user "ql-link-$d" --password "$password"
        qinglian federation link --peer "$d" --peer-amqp "amqp://${BROKER_USER}:${BROKER_PASSWORD}@rabbitmq-$d:5672/%2F"
    done
else
    pw=$(printf '%s' "$NODE_ID" | tr 'a-z-' 'A-Z_')
    eval "password=\${LINK_PASSWORD_$pw:?}"
    # the city's broker must have made this node's link user first: retry a while
    linked=no
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if qinglian federation link --peer "$NODE_PARENT" \
                --peer-amqp "amqp://ql-link-$NODE_ID:$password@rabbitmq-$NODE_PARENT:5672/%2F"; then
            linked=yes
            break
        fi
        echo "federate: link from $NODE_PARENT not running yet (attempt $attempt)"
        sleep 6
    done
    [ "$linked" = yes ] || { echo "federate: giving up on the link from $NODE_PARENT" >&2; exit 1; }
fi
qinglian federation status
