"""The `precision` and `dtype` settings: recorded, applied, and bfloat16 compute with float32 weights."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import config, data, models, runtime, tasks, train
from jaxgen.data import batches
from jaxgen.errors import UserError
from jaxgen.tasks import TASKS

TINY = {"hidden": (32,), "steps": 60, "batch_size": 64, "ckpt_every": 60, "log_every": 20, "warmup_steps": 5}


def test_precision_is_recorded_in_env_json_and_applied(tmp_path):
    cfg = tasks.make_config("mlp", {**TINY, "precision": "high"})
    train.train(cfg, tmp_path / "r", progress=False, make_plots=False)
    env = json.loads((tmp_path / "r" / "env.json").read_text())
    assert env["matmul_precision"] == "high" and env["starts"][-1]["matmul_precision"] == "high"
    with runtime.precision_scope(cfg.precision):
        assert jax.config.jax_default_matmul_precision == "high"


@pytest.mark.parametrize("key,value", [("precision", "fp8"), ("dtype", "float16")])
def test_unknown_precision_or_dtype_is_one_line(key, value):
    with pytest.raises(UserError, match=f"{key} must be one of"):
        tasks.make_config("mlp", config.parse_sets(tasks.config_class("mlp"), [f"{key}={value}"]))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_weights(name):
    cls = TASKS[name][0]
    cfg = tasks.make_config(name, {**cls.TINY, "dtype": "bfloat16"})
    ds = data.load(cls.TINY_DATA)
    task = tasks.build(cfg, ds)
    init_key, data_key, loop_key = runtime.split_keys(0)
    state = task.init(init_key)
    assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype("float32")}
    batch = batches.batch_at(jax.device_put(ds.train), data_key, 0, task.examples_per_step)
    hlo = jax.jit(task.step).lower(state, batch, loop_key).as_text()
    assert "bf16" in hlo  # the dense layers really run in bfloat16
    new, metrics = jax.jit(task.step)(state, batch, loop_key)
    assert {x.dtype for x in jax.tree.leaves(new.params)} == {jnp.dtype("float32")}
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_bfloat16_mlp_learns_about_as_well_as_float32(tmp_path):
    out = {}
    for dtype in ("float32", "bfloat16"):
        cfg = tasks.make_config("mlp", {**TINY, "steps": 200, "ckpt_every": 200, "dtype": dtype})
        out[dtype] = train.train(cfg, tmp_path / dtype, progress=False, make_plots=False)
    assert out["float32"]["test_accuracy"] > 0.8
    assert abs(out["bfloat16"]["test_accuracy"] - out["float32"]["test_accuracy"]) < 0.03


def test_mlp_logits_are_float32_under_bfloat16():
    net = models.MLP(hidden=(8,), num_outputs=3, dtype=jnp.bfloat16)
    params = net.init(jax.random.key(0), jnp.zeros((2, 5)))
    logits, feats = net.apply(params, jnp.ones((2, 5)), features=True)
    assert logits.dtype == feats.dtype == jnp.float32
