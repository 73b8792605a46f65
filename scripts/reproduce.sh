#!/usr/bin/env bash
# Set up, then reproduce the paper's experiments (1, 2, 3, 3b, 4) at laptop scale (the `quick` preset on
# Fashion-MNIST) on the embedded service — no external service — and write the report folder.
# Extra arguments go to `weightspace reproduce` (e.g. --preset paper --dataset mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dataset-fashion-mnist
exec .venv/bin/weightspace reproduce --embedded --preset quick --home ./var --out ./report "$@"
