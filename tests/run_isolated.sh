#!/bin/sh
# Run a command (normally pytest) in a network namespace that has only loopback.
#
#   tests/run_isolated.sh .venv/bin/pytest tests
#
# Subprocesses the tests start (dockerd, docker-registry, skopeo, the layerlab CLI…) are not covered
# by pytest-socket; in this namespace nothing but 127.0.0.1/::1 exists, so nothing can leave the
# machine.  Needs root (unshare --net) and iproute2 (to bring lo up).  The command sees
# LAYERLAB_NET_ISOLATED=1 when isolated, LAYERLAB_NET_ISOLATED=0 (and a notice on stderr) when not.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

# /proc/net/dev lists the interfaces of this process's own network namespace
if [ "${LAYERLAB_NET_ISOLATED:-}" = 1 ] && [ "$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev)" = lo ]; then
    exec "$@"  # already inside an isolated namespace
fi

if [ "$(id -u)" = 0 ] && unshare --net sh -c 'ip link set lo up' >/dev/null 2>&1; then
    LAYERLAB_NET_ISOLATED=1
    export LAYERLAB_NET_ISOLATED
    kill_child=""
    if unshare --help 2>/dev/null | grep -q -- --kill-child; then
        kill_child="--kill-child=TERM"  # if we are killed, the command still gets to tear down
    fi
    # shellcheck disable=SC2016,SC2086 # the inner shell expands "$@"; $kill_child may be empty
    exec unshare --net --fork $kill_child sh -c 'ip link set lo up && exec "$@"' run_isolated.sh "$@"
fi

LAYERLAB_NET_ISOLATED=0
export LAYERLAB_NET_ISOLATED
echo "run_isolated.sh: no network namespace (needs root, unshare and ip); running WITHOUT network isolation" >&2
exec "$@"
