#!/usr/bin/env bash
# Set up, then run every test. First the gate: ruff (lint and format) and mypy --strict; then
# pytest: unit, integration (PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379 and RabbitMQ
# at 127.0.0.1:5672: scripts/services.sh starts any that is down, where it can; SeaweedFS, the
# API and worker processes are started by the tests) and end to end (headless Chromium renders
# the report; docker-compose parses docker-compose.yml without a Docker engine).
# Arguments go to pytest (e.g. -m "not integration" for the unit tests alone); the 25 slowest
# tests are listed at the end of every run, so a growing suite shows where its time goes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dataset-fashion-mnist chromium docker-compose
bash scripts/services.sh
# MNIST's IDX files: beside the checkout in CI (../shared/data/mnist), else where the user says.
if [ -z "${WEIGHTSPACE_DATA_DIR:-}" ] && [ -d ../shared/data/mnist ]; then
  WEIGHTSPACE_DATA_DIR="$(cd ../shared/data && pwd)"
  export WEIGHTSPACE_DATA_DIR
fi
echo "gate: ruff check, ruff format --check, mypy --strict"
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy
exec .venv/bin/pytest --durations=25 "$@"
