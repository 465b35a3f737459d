"""The driver and the MLP task: parameter count, golden first step, determinism, resume, end to end."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data, models, runs, runtime, tasks, train
from jaxgen.checkpoint import params_sha256
from jaxgen.data import batches
from jaxgen.errors import UserError

TINY = {"hidden": (32, 16), "steps": 20, "batch_size": 32, "ckpt_every": 5, "log_every": 5, "warmup_steps": 2}


def tiny_cfg(**kw):
    return tasks.make_config("mlp", {**TINY, **kw})


def run(tmp_path, name="run", **kw):
    return train.train(tiny_cfg(**kw), tmp_path / name, "embedded", progress=False, make_plots=False)


def test_exact_parameter_count():
    ds = data.load("embedded")
    task = tasks.build(tasks.make_config("mlp"), ds)
    params = task.init(jax.random.key(0)).params
    # 784*800+800 + 800*800+800 + 800*10+10
    assert models.param_count(params) == 1_276_810
    tiny = tasks.build(tiny_cfg(), ds).init(jax.random.key(0)).params
    assert models.param_count(tiny) == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10


def _one_step(cfg):
    ds = data.load("embedded")
    task = tasks.build(cfg, ds)
    init_key, data_key, loop_key = runtime.split_keys(cfg.seed)
    state = task.init(init_key)
    arrays = jax.device_put(ds.train)
    batch = batches.batch_at(arrays, data_key, 0, cfg.batch_size)
    return task, state, batch, loop_key


def test_first_step_golden_values():
    cfg = tiny_cfg(augment=False, dropout=0.0, label_smoothing=0.0)
    task, state, batch, loop_key = _one_step(cfg)
    new_state, m = jax.jit(task.step)(state, batch, jax.random.fold_in(loop_key, 0))
    # Untrained 10-way classifier: cross-entropy close to log(10) = 2.3026.
    assert float(m["loss"]) == pytest.approx(2.3026, abs=0.25)
    assert int(new_state.step) == 1
    assert float(m["lr"]) == 0.0  # warm-up starts at zero
    # The golden numbers below were printed by this code on the CPU (jax 0.10.2); they pin the
    # data split, the batch order, the initialisation and the loss together.
    assert float(m["loss"]) == pytest.approx(GOLDEN_LOSS, rel=1e-5)
    assert float(m["grad_norm"]) == pytest.approx(GOLDEN_GRAD_NORM, rel=1e-4)


GOLDEN_LOSS = 2.376018762588501
GOLDEN_GRAD_NORM = 1.5467867851257324


def _metric_over_steps(cfg, name: str, n: int) -> list[float]:
    """Metric `name` of n jitted steps on one fixed batch."""
    task, state, batch, loop_key = _one_step(cfg)
    step = jax.jit(task.step)
    values = []
    for i in range(n):
        state, m = step(state, batch, jax.random.fold_in(loop_key, i))
        values.append(float(m[name]))
    return values


def test_loss_falls_on_one_batch():
    cfg = tiny_cfg(augment=False, dropout=0.0, warmup_steps=0, lr=3e-3, label_smoothing=0.0, steps=1000)
    losses = _metric_over_steps(cfg, "loss", 30)
    assert losses[-1] < 0.3 * losses[0]


def test_same_seed_same_bits_other_seed_other_bits(tmp_path):
    a = run(tmp_path, "a", steps=10)
    b = run(tmp_path, "b", steps=10)
    c = run(tmp_path, "c", steps=10, seed=1)
    assert a["params_sha256"] == b["params_sha256"] != c["params_sha256"]


def test_resume_reproduces_the_straight_run(tmp_path, capsys):
    straight = run(tmp_path, "straight")
    assert straight["step"] == 20
    # Cut the run back to its step-10 checkpoint, as if it had been killed after saving it.
    shutil.copytree(tmp_path / "straight", tmp_path / "cut")
    for step in (15, 20):
        shutil.rmtree(tmp_path / "cut" / "checkpoints" / str(step))
    resumed = run(tmp_path, "cut")
    assert "resuming from step 10" in capsys.readouterr().err
    assert resumed["resumed_from"] == 10 and resumed["step"] == 20
    assert resumed["params_sha256"] == straight["params_sha256"]
    # metrics.jsonl holds each step once, not the killed run's tail twice
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "train/loss" in r]
    assert train_steps == [5, 10, 15, 20]


def test_rerun_of_a_finished_run_changes_nothing(tmp_path):
    first = run(tmp_path, "r", steps=10)
    again = run(tmp_path, "r", steps=10)
    assert again["resumed_from"] == 10 and again["params_sha256"] == first["params_sha256"]


def test_checkpoint_fallback_when_the_newest_is_corrupt(tmp_path, capsys):
    run(tmp_path, "f")
    newest = tmp_path / "f" / "checkpoints" / "20"
    for path in newest.rglob("*"):
        if path.is_file() and "meta" not in str(path):
            path.write_bytes(b"garbage")
    _, state, step, digest, _, *_ = runs.restore_for_eval(tmp_path / "f")
    assert step == 15 and digest == params_sha256(state.params)


def test_params_sha256_is_over_leaves_in_flatten_order():
    import hashlib

    params = {"b": jnp.arange(3, dtype=jnp.float32), "a": jnp.ones((2, 2), jnp.float32)}
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(params):  # a before b
        h.update(np.asarray(leaf).tobytes())
    assert params_sha256(params) == h.hexdigest()


@pytest.mark.parametrize("env", [None, "1", "3"])
def test_grad_norm_is_sampled_every_tenth_step_and_averaged_over_those(env, monkeypatch):
    """10 on the CPU, 1 (every step) on accelerators, or JAXGEN_NORM_EVERY's (gpu_check.sh times both)."""
    from jaxgen.tasks.base import SAMPLED_METRICS, chunk_means, norm_every

    if env is None:
        monkeypatch.delenv("JAXGEN_NORM_EVERY", raising=False)
    else:
        monkeypatch.setenv("JAXGEN_NORM_EVERY", env)
    every = norm_every()
    assert every == (int(env) if env else 10 if jax.default_backend() == "cpu" else 1)
    cfg = tiny_cfg(augment=False, dropout=0.0, warmup_steps=0, lr=3e-3, steps=1000)
    norms = _metric_over_steps(cfg, "grad_norm", 11)
    measured = [i for i, g in enumerate(norms) if not np.isnan(g)]
    assert measured == list(range(0, 11, every)) and all(norms[i] > 0 for i in measured)
    assert set(SAMPLED_METRICS) >= {"grad_norm", "d_grad_norm", "g_grad_norm"}
    means = chunk_means({"grad_norm": np.array(norms), "loss": np.array([1.0, np.nan])})
    assert means["grad_norm"] == pytest.approx(np.mean([norms[i] for i in measured]))
    assert np.isnan(means["loss"])  # only sampled metrics skip NaN: a NaN loss still shows
    assert chunk_means({"grad_norm": np.array([np.nan] * 3)}) == {}  # no measured step: left out


@pytest.mark.parametrize("bad", ["0", "ten", "-2"])
def test_a_bad_norm_every_is_one_line_before_compiling(bad, monkeypatch, tmp_path):
    from jaxgen import train

    monkeypatch.setenv("JAXGEN_NORM_EVERY", bad)
    with pytest.raises(UserError, match="JAXGEN_NORM_EVERY must be a whole number >= 1.*unset it"):
        train.plan(tiny_cfg(steps=10), tmp_path / "run", "embedded")
    assert not (tmp_path / "run").exists()


def test_event_files_do_not_import_pytorch():
    """tensorboardX imports torch where it is installed (0.9 s on every start); jaxgen's event files
    never need it, and a later `import torch` (bench peers) still works."""
    import subprocess
    import sys

    code = (
        "import sys; from jaxgen import sinks; sinks._tensorboardx(); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "import importlib.util; spec = importlib.util.find_spec('torch'); "
        "print('torch installed' if spec else 'torch absent')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
