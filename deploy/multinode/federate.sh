#!/bin/sh
# One node's side of the star, after every node ran bootstrap.sh: trust the peers
# (from the identities they exported), and create the broker links that end here.
#   city:      a restricted link user per district (what that district may pull), and
#              one link from each district's broker (all three exchanges, max-hops 1),
#              logging in as the user that district made for the city;
#   district:  a restricted link user for its city (the three exchanges it sends up),
#              and one link from the city's broker (qinglian.shared + its own
#              qinglian.to.<district>, max-hops 2), logging in as the user the city
#              made for this district.
# No link logs in as a broker's admin: each may read only the exchanges it carries.
# The pair's LINK_PASSWORD_<DISTRICT> is the password of both of its link users.
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

# link_from <peer> <uri>: the peer must have made this node's link user first: retry a while
link_from() {
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if qinglian federation link --peer "$1" --peer-amqp "$2"; then
            return 0
        fi
        echo "federate: link from $1 not running yet (attempt $attempt)"
        sleep 6
    done
    echo "federate: giving up on the link from $1" >&2
    return 1
}

link_password() {  # link_password <district>
    pw=$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')
    eval "printf '%s' \"\${LINK_PASSWORD_$pw:?}\""
}

if [ "$NODE_LEVEL" = city ]; then
    for d in $DISTRICTS; do
        password=$(link_password "$d")
        qinglian federation link-user --peer "$d" --user "ql-link-$d" --password "$password"
    done
    for d in $DISTRICTS; do
        password=$(link_password "$d")
        link_from "$d" "amqp://ql-link-$NODE_ID:$password@rabbitmq-$d:5672/%2F"
    done
else
    password=$(link_password "$NODE_ID")
    qinglian federation link-user --peer "$NODE_PARENT" --user "ql-link-$NODE_PARENT" \
        --password "$password"
    link_from "$NODE_PARENT" "amqp://ql-link-$NODE_ID:$password@rabbitmq-$NODE_PARENT:5672/%2F"
fi
qinglian federation status
