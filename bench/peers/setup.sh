#!/usr/bin/env bash
# Installs the peer tools from their registries into bench/.peers (git-ignored): the npm
# packages mailcheck, @zootools/email-spell-checker, email-misspelled, and the PyPI
# packages dnstwist and symspellpy in a virtualenv of their own. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peers="$here/../.peers"
mkdir -p "$peers"
if [ ! -d "$peers/node_modules/email-misspelled" ]; then
    cp "$here/package.json" "$peers/package.json"
    (cd "$peers" && npm install --no-audit --no-fund --silent >/dev/null 2>&1)
fi
if [ ! -x "$peers/venv/bin/python" ]; then
    python3 -m venv "$peers/venv"
fi
# dnspython: dnstwist asks DNS through it (--nameservers), bench/monitor.py
"$peers/venv/bin/pip" install -q "dnstwist>=20240116" "symspellpy>=6.7" "dnspython>=2.6" >/dev/null
