#!/usr/bin/env bash
# The GPU check of issue 18 §3: environment, the tests marked `gpu`, the GPU benchmarks, and a
# short table ($OUT/device-check.md) with the full figures ($OUT/device-check.json).
#
#   OUT=/some/folder scripts/device-check.sh        # OUT defaults to benchmarks/out/device-check
#
# Each stage has its own time limit and runs whatever happened before it; its exit status is
# recorded in the table. Without CUDA (or with DEVICE_CHECK_QUICK=1) everything shrinks to
# seconds: the gpu tests are skipped and the benchmarks run in quick CPU mode. Wheels in .whl/
# (kornia, captum, ...) are installed into /tmp/site without touching torch; Fashion-MNIST
# files in .devdata/ are used through ROBUSTLENS_DATA. Whole run on an H200: about 4 minutes.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/benchmarks/out/device-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: > "$OUT/stages.tsv"
exec > >(tee -a "$OUT/device-check.log") 2>&1

# Time limits (seconds) per stage: 355 s in all, under 6 minutes.
T_INSTALL=${T_INSTALL:-30}
T_ENV=${T_ENV:-25}
T_TESTS=${T_TESTS:-110}
T_BENCH=${T_BENCH:-175}
BENCH_BUDGET=${BENCH_BUDGET:-160}   # the benchmarks' own budget: sections past it are skipped
T_REPORT=${T_REPORT:-15}

HAS_CUDA=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
QUICK=${DEVICE_CHECK_QUICK:-}
if [ "$HAS_CUDA" != 1 ]; then
  QUICK=1
  echo "no CUDA device: quick CPU mode (gpu tests skipped, no bf16 / channels_last)"
fi
if [ "$QUICK" = 1 ]; then
  # the quick CPU mode proves the script works; on a loaded 2-core machine its benchmarks take
  # 1-4 minutes, so its limits are generous (the 6-minute budget is the GPU run's)
  T_BENCH=${DEVICE_CHECK_QUICK_T_BENCH:-900}
  BENCH_BUDGET=$((T_BENCH - 60))
fi
BENCH_ARGS=(--out "$OUT" --budget "$BENCH_BUDGET")
[ "$QUICK" = 1 ] && BENCH_ARGS+=(--quick)

stage() {  # stage NAME LIMIT NOTE CMD...: run CMD under `timeout`, record its status
  local name=$1 limit=$2 note=$3; shift 3
  local t0 rc
  t0=$(date +%s%N)
  echo "=== $name (limit ${limit} s) $(date -u +%H:%M:%S)"
  timeout --kill-after=10 "$limit" "$@"
  rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s\t%s\t%d.%03d\t%s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) "$note" \
    >> "$OUT/stages.tsv"
  echo "=== $name: exit $rc"
  return 0
}

if [ "${DEVICE_CHECK_SKIP_INSTALL:-}" = 1 ]; then
  echo "DEVICE_CHECK_SKIP_INSTALL=1: wheels not installed"
elif compgen -G ".whl/*.whl" > /dev/null; then
  stage install "$T_INSTALL" "wheels from .whl/ into /tmp/site" \
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
else
  echo "no .whl/ folder: nothing to install"
fi
if [ "${DEVICE_CHECK_SKIP_INSTALL:-}" != 1 ] && [ -d /tmp/site ] && compgen -G ".whl/*.whl" > /dev/null; then
  export PYTHONPATH=/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d "$ROOT/.devdata" ] && export ROBUSTLENS_DATA=$ROOT/.devdata
export PYTHONUNBUFFERED=1

stage env "$T_ENV" "versions, GPU" "$PYTHON" scripts/device_check.py env "$OUT"
stage gpu-tests "$T_TESTS" "pytest -m gpu tests/gpu" \
  "$PYTHON" -m pytest tests/gpu -m gpu -q -rA -p no:cacheprovider \
  --junitxml="$OUT/gpu-tests.xml" -o junit_family=xunit2
stage bench "$T_BENCH" "benchmarks/bench_gpu.py${QUICK:+ (quick)}" \
  "$PYTHON" -m benchmarks.bench_gpu "${BENCH_ARGS[@]}"
stage report "$T_REPORT" "device-check.md / .json" "$PYTHON" scripts/device_check.py report "$OUT"
# the report's own row is written after it ran: write the table once more to include it
"$PYTHON" scripts/device_check.py report "$OUT" > /dev/null 2>&1 || true

failed=$(awk -F'\t' '$2 != 0' "$OUT/stages.tsv" | cut -f1 | tr '\n' ' ')
echo "device check finished $(date -u +%H:%M:%S); results in $OUT; failed stages: ${failed:-none}"
[ -z "$failed" ]
