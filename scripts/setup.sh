#!/usr/bin/env bash
# Create .venv (once) and install weightspace, its client and the dev tools into it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e ./client -e '.[dev]'
