#!/usr/bin/env bash
# Set up, start the embedded service (`weightspace up`: SQLite, local snapshots, a real Celery
# worker, no external service), train a small experiment and print its PCA; then stop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WEIGHTSPACE_URL="http://127.0.0.1:${WEIGHTSPACE_PORT:-8000}"
home="${WEIGHTSPACE_HOME:-$PWD/var}"
.venv/bin/weightspace up --port "${WEIGHTSPACE_PORT:-8000}" --home "$home" > "$home.log" 2>&1 &
up=$!
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "$WEIGHTSPACE_URL/health" > /dev/null && break; sleep 1; done
id=$(.venv/bin/weightspace submit docs/examples/digits-mlp.yaml --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
.venv/bin/weightspace wait "$id"
.venv/bin/weightspace pca "$id" --components 3
.venv/bin/weightspace distances "$id"
