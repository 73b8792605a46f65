#!/usr/bin/env bash
# Set up, then run every test: unit, integration (PostgreSQL at 127.0.0.1:5432 and Redis at
# 127.0.0.1:6379 must be running; SeaweedFS is started by the tests) and end to end (headless
# Chromium renders the report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dataset-fashion-mnist chromium
exec .venv/bin/pytest "$@"
