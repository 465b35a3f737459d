#!/usr/bin/env bash
# Issue 19's GPU checks as one prepared, time-boxed script in three parts of at most 300 s of time boxes each,
# for a session lent a GPU machine (15 minutes of device time, its start included): run `speed` first, then
# `suite` at once while the machine is still warm (it goes back after 30 s idle), then `extra` if time is
# left. Each part fits one call.
#
# Here, once:   make gpu-wheels      (.whl/, ignored: the wheels the device image lacks -- mlxtend,
#               tensorboardX, scikit-learn, tqdm, pytest-xdist -- jaxgen's own wheel, and the Fashion-MNIST
#               files under .whl/data/ when /usr/share/datasets/fashion-mnist has them)
# There:        device run: command "bash benchmarks/gpu_check.sh speed", carry [".whl"], timeout_s 320;
#               at once the same with "suite", then "extra" if device time is left
# Back here:    $OUT/gpu-<part>.tgz (+ suite.log): unpack into docs/bench/ by name
#               (docs/bench/<bench>-<device>/), put the figures in the README with the device named.
#
# speed (300 s): bench peers --quick at batch 128 and 1024 (the driver as the whole command beside the
#   reference lax.scan loop and PyTorch's CUDA-graph step); the lax.cond of sampled gradient norms timed both
#   ways (JAXGEN_NORM_EVERY=1 against 10, the command at batch 128); benchmarks/profile_chunk.py
#   (the driver's chunk against the reference loop, op by op, and the default MLP's start-up taken apart);
#   the default MLP in float32 and in bfloat16 (accuracy and samples/s from their JSON summaries).
# suite (300 s): the test suite on the GPU (8 workers, files kept together, -v so that a run cut by its
#   time box still names every result); bench throughput --quick (every task, conv ones included);
#   bench activations --quick.
# extra (290 s, when device time is left): the CNN on Fashion-MNIST and the DCGAN at their defaults.
# seeds (300 s): `--seeds` with 1, 4 and 16 seeds of the default MLP (and 4 unrolled) and of the ring8 GAN
#   (5,000 steps): seeds.json's samples_per_s (every seed's) over the seeds is the samples/s per seed.
# Each step runs under `timeout`, so the script always ends and archives what it has after every step.
set -u
PART=${1:-}
case "$PART" in speed | suite | extra | seeds) ;; *) echo "usage: bash benchmarks/gpu_check.sh speed|suite|extra|seeds" >&2; exit 2 ;; esac
OUT=${OUT:-/tmp/gpu-out}
WORK=/tmp/gpu
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=3
if ls .whl/*.whl >/dev/null 2>&1 && [ ! -e /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && touch /tmp/site/.done || exit 1
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"  # the checkout's jaxgen first, the wheels' metadata after
[ -d .whl/data ] && export JAXGEN_DATA="$PWD/.whl/data"     # --data fashion finds .whl/data/fashion-mnist/

archive() {  # reports, logs and figures only (checkpoints stay behind: one file back may be 16 MiB at most)
  (cd /tmp && find gpu -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name '*.log' \
    -o -name '*.txt' -o -name '*.png' \) -not -path '*/checkpoints*' -not -path '*/traces/*' \
    | tar czf "$OUT/gpu-$PART.tgz" -T - 2>/dev/null)
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

{ nvidia-smi; python3 -c "import jax; print(jax.__version__, jax.devices())"; python3 -m jaxgen --version
  python3 -c "import importlib.util as u; print('missing:', [m for m in ('mlxtend', 'tensorboardX', 'sklearn',
    'tqdm', 'xdist', 'torch', 'chex', 'scipy') if u.find_spec(m) is None])"; } >"$WORK/device-$PART.txt" 2>&1
head -n 20 "$WORK/device-$PART.txt"

if [ "$PART" = speed ]; then
  step peers-128 90 python3 -m jaxgen bench peers --quick --batch-size 128 --out "$WORK/peers-128"
  step peers-1024 80 python3 -m jaxgen bench peers --quick --batch-size 1024 --out "$WORK/peers-1024"
  step norm-cond 40 bash -c 'for every in 1 10; do JAXGEN_NORM_EVERY=$every python3 -m jaxgen train mlp \
    --no-plots --workdir "$0/norm-$every" --set hidden=512,512 --set dropout=0 --set augment=false \
    --set steps=20000 --set batch_size=128 | tail -n 1; done' "$WORK"
  step profile 50 python3 benchmarks/profile_chunk.py --first-step --out "$WORK/profile"
  step bf16 40 bash -c 'for dt in float32 bfloat16; do python3 -m jaxgen train mlp --no-plots \
    --workdir "$0/mlp-$dt" --set dtype=$dt | tail -n 1; done' "$WORK"
fi
if [ "$PART" = suite ]; then
  step suite 210 python3 -m pytest -v -p no:cacheprovider -n 8 --dist loadfile --durations=25 -m "not slow"
  cp "$WORK/suite.log" "$OUT/suite.log"
  step throughput 60 python3 -m jaxgen bench throughput --quick --out "$WORK/throughput"
  step activations 30 python3 -m jaxgen bench activations --quick --out "$WORK/activations"
fi
if [ "$PART" = extra ]; then
  step fashion-cnn 150 python3 -m jaxgen train mlp --no-plots --data fashion --set arch=conv \
    --workdir "$WORK/fashion-cnn"
  step dcgan 140 python3 -m jaxgen train gan --no-plots --set arch=conv --workdir "$WORK/dcgan"
fi
# issue 33: samples/s per seed with 1, 4 and 16 seeds in one program
if [ "$PART" = seeds ]; then
  M="python3 -m jaxgen train mlp --no-plots --no-progress"
  G="python3 -m jaxgen train gan --no-plots --no-progress --data toy:ring8 --set steps=5000"
  step seeds-mlp-1 45 $M --seeds 0 --workdir "$WORK/seeds-mlp-1"
  step seeds-mlp-4 45 $M --seeds 0-3 --workdir "$WORK/seeds-mlp-4"
  step seeds-mlp-16 45 $M --seeds 0-15 --workdir "$WORK/seeds-mlp-16"
  step seeds-mlp-4-unroll 45 $M --seeds 0-3 --seeds-mode unroll --workdir "$WORK/seeds-mlp-4-unroll"
  step seeds-gan-1 40 $G --seeds 0 --workdir "$WORK/seeds-gan-1"
  step seeds-gan-4 40 $G --seeds 0-3 --workdir "$WORK/seeds-gan-4"
  step seeds-gan-16 40 $G --seeds 0-15 --workdir "$WORK/seeds-gan-16"
fi
archive
cat "$WORK/steps.txt"
