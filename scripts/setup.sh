#!/usr/bin/env bash
# Create .venv (once) and install weightspace, its client and the dev tools into it.
# Arguments: Debian packages to make sure of (installed with apt-get when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for package in "$@"; do
  dpkg -s "$package" > /dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
  else
    echo "please install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
fi
python3 -m venv .venv
# Versions as CI tested them (constraints.txt, from scripts/constraints.py); pyproject keeps ranges.
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ./client -e '.[dev]'
