#!/usr/bin/env bash
# Installs everything typogate and its tests need on a fresh Debian machine (run as root):
# Debian packages from scripts/setup.d/*.sh (each part of typogate lists its own), then a
# virtualenv with typogate and its test dependencies.
set -euo pipefail
venv=${1:-.venv}
cd "$(dirname "$0")/.."

apt_packages=()
for part in scripts/setup.d/*.sh; do
    # shellcheck source=/dev/null
    source "$part"   # each appends to apt_packages
done
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip >/dev/null
"$venv/bin/pip" install -q -e ".[test,milter]"
