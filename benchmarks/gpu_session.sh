#!/usr/bin/env bash
# Every CUDA check CI cannot run, in one call of about 8 minutes on an H200:
#   bash benchmarks/gpu_session.sh        (from anywhere; OUT=<folder> for the outputs)
#
# Phase 1, together (correctness only, so sharing the GPU changes nothing they assert):
#   build     every .cu with nvcc for sm_80 and sm_90, and rung 05 with each sweep tiling
#             (tests/test_cuda_nvcc.py: the ptxas table, no spills)
#   tests     the GPU test files (the runner on every quick cell of every CUDA rung, every
#             tiling, each timing mode), compute-sanitizer left to the next two
#   memcheck  compute-sanitizer --tool memcheck over every kernel (exercise_every_kernel)
#   racecheck the same under racecheck
# Phase 2, one at a time (timings, alone on the GPU):
#   sweep     benchmarks/warptile_sweep.py: the tiles for this GPU, into results/warptile.json
#   targets   benchmarks/cuda_targets.py in events, graph and kernel timing (PyTorch eager
#             beside the MNIST step where torch has CUDA), with the tiles just chosen
#   profile   `harness run --profile --gpu-timing kernel` on cuda-tiled's quick matmuls: ncu
#             reports linked from the rows, the workers' timing mode; then the report's CUDA
#             GEMM ladder from the rows stored, and `harness report` where it can run
#
# At most 8 files come back from $OUT, so it holds: summary.txt (each step's exit status and
# seconds), env.txt, one log per phase-1 step's kind (tests.log, sanitizer.log), sweep.log,
# targets.log, profile.log, and results.tar.gz (results/ with the stored rows, the choice,
# the ncu reports, the rendered report and the tests' JUnit XML). Every step runs whatever
# the others did; the script's exit status is the number of steps that failed.

set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_session}
PY=${PYTHON:-python3}
DEADLINE=${BUDGET_S:-540}  # seconds from the start; no step runs past it (a call gets 600)
WORK=$(mktemp -d)
mkdir -p "$OUT" results
export PYTHONUNBUFFERED=1

# step NAME TIMEOUT_S LOG COMMAND...: run it with its output appended to LOG, and add how it
# went to the summary (one line: a step in the background cannot set a variable here).
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS rc
  shift 3
  if [ $((DEADLINE - SECONDS)) -lt "$limit" ]; then limit=$((DEADLINE - SECONDS)); fi
  if [ "$limit" -le 5 ]; then
    echo "$name rc=skip  no time left before ${DEADLINE}s" >>"$WORK/summary.txt"
    return
  fi
  echo "=== $name: $*" >>"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  printf '%-10s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - start))" "$*" >>"$WORK/summary.txt"
}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -1
  ncu --version | tail -1
  compute-sanitizer --version | tail -1
  "$PY" -c "import sys, cupy, numpy; print(sys.version.split()[0], 'cupy', cupy.__version__, 'numpy', numpy.__version__)"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
} >"$OUT/env.txt" 2>&1

EXERCISE="import tests.test_cuda_impls as t; t.exercise_every_kernel()"
SANITIZE=(compute-sanitizer --error-exitcode=9 --print-limit=20)
step build 120 "$WORK/build.log" "$PY" -m pytest -q tests/test_cuda_nvcc.py &
step tests 240 "$WORK/tests.log" "$PY" -m pytest -q -rs tests/test_cuda_impls.py \
  tests/test_cuda_timing.py tests/test_cuda_ladder.py -k "not compute_sanitizer" \
  --junitxml="$WORK/junit.xml" &
step memcheck 240 "$WORK/memcheck.log" "${SANITIZE[@]}" --tool=memcheck "$PY" -c "$EXERCISE" &
step racecheck 240 "$WORK/racecheck.log" "${SANITIZE[@]}" --tool=racecheck "$PY" -c "$EXERCISE" &
wait

step sweep 80 "$OUT/sweep.log" "$PY" -m benchmarks.warptile_sweep --time-per-cell 0.5
step targets 130 "$OUT/targets.log" "$PY" -m benchmarks.cuda_targets --time-per-cell 1 \
  --gpu-timing events,graph,kernel
step profile 120 "$OUT/profile.log" "$PY" -m harness run --impl cuda-tiled --workload matmul \
  --phase fwd --quick --gpu-timing kernel --profile --no-report
# The report's CUDA GEMM ladder from the rows just stored, then the whole report, which needs
# ruptures (its change points): the image may lack it (pip install ruptures, or carry a wheel).
step ladder 30 "$OUT/profile.log" "$PY" - <<'EOF'
from harness.report import tables
from harness.results import store

ladder = tables.cuda_ladder(store.load())
print(f"matmul fwd {ladder['size']}, GPU timing {ladder['mode']}" if ladder else "no ladder rows")
for r in ladder["rows"] if ladder else []:
    print(f"{r['rung']:<15} {r['time']:>9} {r['gflops']:>8} {r['over_below']:>6}  {r['adds']}")
EOF
if "$PY" -c "import ruptures" 2>/dev/null; then
  step report 60 "$OUT/profile.log" "$PY" -m harness report
else
  echo "report     skipped: ruptures is not installed (the ladder step above has the section)" \
    >>"$WORK/summary.txt"
fi

# A failing sanitizer can print without end: keep the head and the tail of a long log.
for log in build tests memcheck racecheck; do
  file=$WORK/$log.log
  if [ "$(wc -c <"$file")" -gt 4000000 ]; then
    { head -c 1000000 "$file"; echo "... cut ..."; tail -c 1000000 "$file"; } >"$file.cut"
    mv "$file.cut" "$file"
  fi
done
cat "$WORK/build.log" "$WORK/tests.log" >"$OUT/tests.log"
cat "$WORK/memcheck.log" "$WORK/racecheck.log" >"$OUT/sanitizer.log"
failed=$(grep ' rc=' "$WORK/summary.txt" | grep -c -v ' rc=0 ')
cp "$WORK/junit.xml" reports/summary.html results/ 2>/dev/null
tar -czf "$OUT/results.tar.gz" results
if [ "$(wc -c <"$OUT/results.tar.gz")" -gt 15000000 ]; then  # 16 MiB a file comes back
  tar -czf "$OUT/results.tar.gz" --exclude='*.ncu-rep' results
  echo "results.tar.gz: the ncu reports left out (over 15 MB)" >>"$WORK/summary.txt"
fi
echo "failed steps: $failed" >>"$WORK/summary.txt"
cp "$WORK/summary.txt" "$OUT/summary.txt"
cat "$OUT/summary.txt"
rm -rf "$WORK"
exit "$failed"
