#!/usr/bin/env bash
# The GPU engine's first real run, in one command (`make gpu-run`, or `bash tests/gpu_run.sh` from
# the source tree on an offline GPU machine: PYTHONPATH=. and FMEDU_DATA=<the ml-100k folder>).
#   1. the GPU tests on the GPU (FMEDU_GPU_TESTS=1: they fail, naming the driver's problem, when
#      the GPU cannot run them) and the sm_90 compile test;
#   2. the smoke preset, then stability-full (500 runs x 20 epochs), with --device cuda, timed;
#   3. the agreement table of every GPU row against the committed CPU rows
#      (results/stability-full.csv; tests/gpu_agreement.py);
#   4. the benchmark (its GPU lines: each method's rate and its ratio to the CPU engine).
# Everything goes to $GPU_RUN_OUT (default /tmp/fmedu-gpu-run): the results files with their
# provenance (device, wall time), agreement.csv, the logs and summary.txt. A few minutes on an
# H100/H200; the kernel is compiled once (about 10 s) and then loaded from numba's disk cache.
# To publish: copy $GPU_RUN_OUT/stability-full.{csv,json} and agreement.csv into results/gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${GPU_RUN_OUT:-/tmp/fmedu-gpu-run}
export NUMBA_ENABLE_CUDASIM=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONHASHSEED=0
# numba's cache folder named here, so that nothing needs pooch (fmedu would ask it for the user cache)
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$HOME/.cache/fmedu/numba}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
status=0
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME COMMAND...: run, time, log; a failure is noted and the script goes on
    local name=$1; shift
    local start=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    note "$name: exit $rc, $((SECONDS - start)) s (log: $OUT/$name.log)"
    tail -n 25 "$OUT/$name.log"
    [ $rc -eq 0 ] || status=1
    return $rc
}

note "fmedu GPU run, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"
"$PYTHON" -c "from fmedu.engine import cuda; print('device:', cuda.device_info())" 2>&1 | tee -a "$OUT/summary.txt"

FMEDU_GPU_TESTS=1 step gpu-tests "$PYTHON" -m pytest tests/test_engine_cuda.py tests/test_cuda_ptx.py \
    tests/test_bench.py tests/test_adam.py -p no:cacheprovider -q -rs
step smoke "$PYTHON" -m fmedu experiment smoke --device cuda --out "$OUT" --no-progress
rm -f "$OUT/stability-full.csv" "$OUT/stability-full.json"
if step stability-full "$PYTHON" -m fmedu experiment stability-full --device cuda --out "$OUT" --no-progress; then
    step agreement "$PYTHON" tests/gpu_agreement.py "$OUT/stability-full.csv" results/stability-full.csv "$OUT/agreement.csv"
    "$PYTHON" -c "import json; d = json.load(open('$OUT/stability-full.json')); print('stability-full wall_s_total:', d['wall_s_total'], 'device:', d['sessions'][-1]['device'])" | tee -a "$OUT/summary.txt"
fi
step bench "$PYTHON" -m fmedu bench
note "done: exit $status; results in $OUT"
exit $status
