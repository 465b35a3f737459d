#!/usr/bin/env bash
# The GPU checks of the speed issue as one prepared, time-boxed script (560 s of time boxes, under the
# device's 600 s per call), for a session lent a GPU machine (15 minutes of device time, start included).
#
# Here, once:   make gpu-wheels      (puts mlxtend, tensorboardX and jaxgen's own wheel in .whl/, ignored)
# There:        device run: command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 590
# Back here:    everything in one archive, $OUT/gpu.tgz (+ suite.log): unpack it into docs/bench/ by name
#               (docs/bench/<bench>-<device>/), put the figures in the README with the device named.
#
# Steps (each under `timeout`, so the script always ends and archives what it has):
#   1. the test suite on the GPU (pytest-xdist, 4 workers, files kept together), 150 s
#   2. jaxgen bench peers at batch 128 and 1024 (quick mode: 2 rounds, each written as it ends; the
#      driver as the whole command), 110 s each
#   3. the default mlp in float32 and in bfloat16 (accuracy and samples/s from their JSON summaries)
#   4. jaxgen bench throughput --quick (every task), jaxgen bench activations --quick
set -u
OUT=${OUT:-/tmp/gpu-out}
WORK=/tmp/gpu
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=3
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"  # the checkout's jaxgen first, the wheels' metadata after

archive() {  # reports, logs and figures only (checkpoints stay behind: one file back may be 16 MiB at most)
  (cd /tmp && find gpu -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name '*.log' \
    -o -name '*.txt' -o -name '*.png' \) -not -path '*/checkpoints*' | tar czf "$OUT/gpu.tgz" -T - 2>/dev/null)
}
step() {  # step NAME SECONDS CMD...: run one check time-boxed, log it, archive what exists so far
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  echo "== $name (at most ${secs}s): $*" | tee -a "$WORK/steps.txt"
  timeout --kill-after=10 "$secs" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  echo "   $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$WORK/steps.txt"
  tail -n 3 "$WORK/$name.log"
  archive
}

{ nvidia-smi; python3 -c "import jax; print(jax.__version__, jax.devices())"; } >"$WORK/device.txt" 2>&1
cat "$WORK/device.txt" | head -20

step suite 150 python3 -m pytest -q -p no:cacheprovider -n 4 --dist loadfile --durations=25 -m "not slow"
cp "$WORK/suite.log" "$OUT/suite.log"
step peers-128 110 python3 -m jaxgen bench peers --quick --batch-size 128 --out "$WORK/peers-128"
step peers-1024 110 python3 -m jaxgen bench peers --quick --batch-size 1024 --out "$WORK/peers-1024"
step bf16 60 bash -c 'for dt in float32 bfloat16; do python3 -m jaxgen train mlp --no-plots \
  --workdir "$0/mlp-$dt" --set dtype=$dt | tail -n 1; done' "$WORK"
step throughput 80 python3 -m jaxgen bench throughput --quick --out "$WORK/throughput"
step activations 50 python3 -m jaxgen bench activations --quick --out "$WORK/activations"
archive
cat "$WORK/steps.txt"
