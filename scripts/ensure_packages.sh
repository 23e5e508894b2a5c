#!/bin/sh
# Make sure the Debian/Ubuntu packages LayerLab needs are installed.
# Usage: scripts/ensure_packages.sh PACKAGE...
# As root, missing packages are installed with apt-get; otherwise the exact list is printed and
# the script fails, so that a user knows what to ask an administrator for.
set -eu
missing=""
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
    exit 0
fi
echo "LayerLab needs these system packages, which are missing:$missing" >&2
echo "Ask an administrator to run: sudo apt-get install$missing" >&2
exit 1
