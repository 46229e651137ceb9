#!/bin/sh
# Runs one Qinglian service process: SERVICE=<name> (or the first argument) picks it.
# The image's ENTRYPOINT, so a compose `command:` comes here as arguments too: a
# `nameko run ... services.<name>.service:<Class>` runs with that service's broker login,
# any other command as given. Works in the image (WORKDIR /app) and from a checkout.
set -eu

cd "$(dirname "$0")/.."

# the service's own broker login once the node has them (qinglian node broker-users),
# else AMQP_URI as given
own_login() {
    if uri="$(python -m shared.brokerusers "$1" 2>/dev/null)" && [ -n "$uri" ]; then
        export AMQP_URI="$uri"
    fi
}

if [ $# -gt 1 ]; then
    for last in "$@"; do :; done
    case "$last" in
        services.*.service:*) name="${last#services.}"; own_login "${name%%.*}" ;;
    esac
    exec "$@"
fi

service="${1:-${SERVICE:-}}"
# what `nameko run` takes and the default port, from the service registry
# (shared/registry.py: the package's qinglian.services entry points)
if ! found="$(python -m shared.registry "$service")"; then
    echo "entrypoint: set SERVICE to one of the services above (got '$service')" >&2
    exit 64
fi
target="${found% *}"
port="${found##* }"

# deploy/config.yaml is shared by all services, so the per-service default port is set here.
export WEB_SERVER_ADDRESS="${WEB_SERVER_ADDRESS:-0.0.0.0:$port}"

own_login "$service"
exec nameko run --config deploy/config.yaml "$target"
