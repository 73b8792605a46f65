#!/usr/bin/env bash
# Build the wheelhouse .whl/ that scripts/device-paper.sh installs from on the lent GPU machine
# (Python 3.12, x86-64, no network; it has torch, numpy, scipy and scikit-learn). Run from the
# root of the checkout that the device tool sends (the wheels travel with it: `carry: [".whl"]`).
#
#   scripts/device-wheels.sh            # downloads into .whl/, checks the 64 MiB limit
#
# Versions are this project's pins (constraints.txt). Each group is installed there only when
# its import fails (see scripts/device_wheels.py), so wheels of packages the machine already has
# are carried but left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl
# Everything the core needs beyond torch/numpy: pydantic (spec), safetensors (snapshots),
# matplotlib (report figures), with their own requirements.
PACKAGES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions safetensors
  matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing python-dateutil six packaging)

exclude="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$WHEELS/" "$exclude" 2>/dev/null || echo "/$WHEELS/" >>"$exclude"
mkdir -p "$WHEELS"
pins=()
for name in "${PACKAGES[@]}"; do
  pin=$(grep -i "^${name}==" constraints.txt || true)
  [[ -n $pin ]] || { echo "no pin for $name in constraints.txt" >&2; exit 1; }
  pins+=("$pin")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$WHEELS" "${pins[@]}"
ls -1 "$WHEELS"
bytes=$(du -cb "$WHEELS"/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "wheelhouse: $((bytes / 1024 / 1024)) MiB; tracked tree: $((tree / 1024)) KiB; limit 64 MiB"
if ((bytes + tree > 60 * 1024 * 1024)); then
  echo "too large to travel with the tree" >&2
  exit 1
fi
