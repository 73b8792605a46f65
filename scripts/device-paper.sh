#!/usr/bin/env bash
# The paper at full scale on the lent GPU machine, in at most 8 minutes of wall time.
#
# Run from the repository root, by the device tool (see docs/results/README.md):
#   run(command="bash scripts/device-paper.sh", carry=[".whl"], timeout_s=560)
# The machine has torch, numpy, scipy and scikit-learn but no network: what else the core needs
# comes from the wheelhouse .whl/ built here by scripts/device-wheels.sh (installed only where an
# import fails). MNIST is read from ../shared/data/mnist (or shared/data/mnist, or .data/mnist,
# or $WEIGHTSPACE_DATA_DIR/mnist).
#
# It calibrates the trainer on the device (one epoch of one and of five replicas), takes the
# paper's 200 epochs if the whole suite's training fits its share of the budget (else as many as
# fit, said in the log and in timings.json), runs `python -m weightspace.offline --preset paper
# --dataset mnist`, and writes to $OUT (at most 8 files): report.tar.gz (the report folder, no
# snapshots), claims.json, timings.json, environment.json and device-paper.log.
#
# Environment overrides: WEIGHTSPACE_PAPER_EPOCHS (fixed epoch count, no calibration: the CPU dry
# run uses 2), WEIGHTSPACE_PAPER_DATASET (default mnist; the CPU dry run uses digits, whose 1,347
# images a CPU trains the paper's CNN on in seconds), WEIGHTSPACE_PAPER_SEEDS (replicates, if the offline runner takes --seeds; default 1),
# WEIGHTSPACE_PAPER_BUDGET_S (whole-script wall budget, default 480), WEIGHTSPACE_TF32 (default 1
# here: TF32 matrix products, recorded with every run; 0 for exact float32).
set -uo pipefail
export PYTHONUNBUFFERED=1
START=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-$ROOT/var/device-out}
if [[ -z ${WEIGHTSPACE_PAPER_WORK:-} ]]; then
  WORK=$(mktemp -d /tmp/weightspace-paper.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT # the snapshots (about 1.7 GB at full scale) stay behind
else
  WORK=$WEIGHTSPACE_PAPER_WORK
fi
BUDGET=${WEIGHTSPACE_PAPER_BUDGET_S:-480}
SEEDS=${WEIGHTSPACE_PAPER_SEEDS:-1}
DATASET=${WEIGHTSPACE_PAPER_DATASET:-mnist}
export WEIGHTSPACE_TF32=${WEIGHTSPACE_TF32:-1}
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/device-paper.log"
: >"$LOG"
say() { echo "[device-paper +$(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }

# 1. What the machine lacks, from the wheelhouse (groups installed only where an import fails).
SITE=$WORK/site
missing=$("$PY" - <<'EOF'
import importlib.util
groups = {
    "pydantic": "pydantic pydantic_core annotated_types typing_inspection typing_extensions",
    "safetensors": "safetensors",
    "matplotlib": "matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing "
    "python_dateutil six packaging",
}
print(" ".join(w for m, ws in groups.items() if importlib.util.find_spec(m) is None for w in ws.split()))
EOF
)
if [[ -n $missing ]]; then
  wheels=()
  for name in $missing; do
    found=$(ls .whl/"$name"-*.whl 2>/dev/null | head -1)
    [[ -n $found ]] || { say "missing $name and no .whl/$name-*.whl (build: scripts/device-wheels.sh)"; exit 1; }
    wheels+=("$found")
  done
  say "installing from the wheelhouse: $missing"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${wheels[@]}" 2>&1 | tee -a "$LOG" || exit 1
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# 2. MNIST.
DATA=""
for dir in "${WEIGHTSPACE_DATA_DIR:-}" ../shared/data shared/data .data; do
  if [[ -n $dir && -d $dir/mnist ]]; then DATA=$(cd "$dir" && pwd); break; fi
done
if [[ -z $DATA && $DATASET == mnist ]]; then
  say "no mnist/ under \$WEIGHTSPACE_DATA_DIR, ../shared/data, shared/data or .data"
  exit 1
fi
DATA=${DATA:-$ROOT/.data}
export WEIGHTSPACE_DATA_DIR=$DATA
say "data from $DATA; writing to $OUT; work in $WORK"

# 3. The environment, and the epochs that fit.
"$PY" scripts/device_paper_plan.py environment >"$OUT/environment.json" 2>>"$LOG" || exit 1
cat "$OUT/environment.json" | tee -a "$LOG"
if [[ -n ${WEIGHTSPACE_PAPER_EPOCHS:-} ]]; then
  echo "{\"epochs\": $WEIGHTSPACE_PAPER_EPOCHS, \"calibrated\": false}" >"$WORK/plan.json"
else
  say "calibrating (one epoch of one and of five replicas)"
  if ! "$PY" scripts/device_paper_plan.py plan --budget "$(left)" >"$WORK/plan.json" 2>"$WORK/plan.err"; then
    cat "$WORK/plan.err" >>"$LOG"
    grep -q "does not have a deterministic implementation" "$WORK/plan.err" || exit 1
    # An operation without a deterministic kernel on this device: run anyway, warned and recorded.
    say "an operation has no deterministic CUDA kernel here; WEIGHTSPACE_DETERMINISM=warn"
    export WEIGHTSPACE_DETERMINISM=warn
    "$PY" scripts/device_paper_plan.py plan --budget "$(left)" >"$WORK/plan.json" 2>>"$LOG" || exit 1
  fi
fi
EPOCHS=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['epochs'])" "$WORK/plan.json")
say "plan: $(cat "$WORK/plan.json")"
seeds_arg=()
if "$PY" -m weightspace.offline --help 2>/dev/null | grep -q -- "--seeds"; then
  seeds_arg=(--seeds "$SEEDS")
fi

# 4. The suite, time-boxed so that the packing below always runs.
say "training the paper preset on $DATASET: $EPOCHS epochs, seeds ${SEEDS}"
train_start=$(date +%s)
timeout --signal=TERM --kill-after=10 "$(($(left) - 25))" \
  "$PY" -m weightspace.offline --preset paper --dataset "$DATASET" --data-dir "$DATA" \
  --epochs "$EPOCHS" "${seeds_arg[@]}" --out "$WORK/report" --snapshots "$WORK/snapshots" \
  2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
train_end=$(date +%s)
say "offline runner exited with $status after $((train_end - train_start)) s"

# 5. Results out: report (no snapshots), claims, timings, environment, log.
[[ -f $WORK/report/claims.json ]] && cp "$WORK/report/claims.json" "$OUT/claims.json"
if [[ -d $WORK/report ]]; then
  tar -czf "$OUT/report.tar.gz" -C "$WORK" --exclude=report/snapshots report
fi
"$PY" - "$WORK/plan.json" "$OUT/timings.json" "$status" "$((train_end - train_start))" \
  "$(($(date +%s) - START))" "$EPOCHS" "$WORK/report/claims.json" <<'EOF'
import json, sys
from pathlib import Path
plan, out, status, run_s, total_s, epochs, claims = sys.argv[1:]
timings = {
    "status": int(status),
    "epochs": int(epochs),
    "offline_seconds": int(run_s),
    "script_seconds": int(total_s),
    "plan": json.loads(Path(plan).read_text()),
}
if Path(claims).is_file():  # the report's own account (training wall time per experiment)
    timings["report_meta"] = json.loads(Path(claims).read_text()).get("meta")
Path(out).write_text(json.dumps(timings, indent=2) + "\n")
print(json.dumps(timings))
EOF
say "done: $(ls "$OUT" | tr '\n' ' ')"
exit "$status"
