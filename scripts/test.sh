#!/usr/bin/env bash
# Set up, then run every test: unit, integration (PostgreSQL at 127.0.0.1:5432, Redis at
# 127.0.0.1:6379; SeaweedFS is started by the tests themselves) and end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest "$@"
