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
case "$service" in
    units)       class=UnitsService;       port=8101 ;;
    supervision) class=SupervisionService; port=8102 ;;
    education)   class=EducationService;   port=8103 ;;
    exchange)    class=ExchangeService;    port=8104 ;;
    *)
        echo "entrypoint: set SERVICE to units, supervision, education or exchange (got '$service')" >&2
        exit 64
        ;;
esac

# Ports repeat shared.config.DEFAULT_PORTS (tests/test_compose.py checks they agree):
# deploy/config.yaml is shared by all services, so the per-service default lives here.
export WEB_SERVER_ADDRESS="${WEB_SERVER_ADDRESS:-0.0.0.0:$port}"

own_login "$service"
exec nameko run --config deploy/config.yaml "services.$service.service:$class"
