"""The task contract, for every registered task: init, one jitted step, evaluate, sample, checkpoint and
bit-exact resume on the task's own tiny config (ConfigClass.TINY on ConfigClass.TINY_DATA).

A task is covered here the day it is registered in jaxgen.tasks.TASKS; its arch=conv variant too, on
ConfigClass.TINY_CONV (on the embedded images: convolutions need them). Each (task, arch) also runs on tiny
8x8x3 colour images (an npz written here): the models take their shape from the data.
"""

import json
import shutil

import jax
import numpy as np
import pytest

from jaxgen import data, runs, runtime, tasks, train
from jaxgen.data import batches
from jaxgen.tasks import TASKS

STEPS = {"steps": 12, "ckpt_every": 6, "log_every": 3}


def tiny(name, arch="mlp", **kw):
    cls = TASKS[name][0]
    if arch == "conv":
        return tasks.make_config(name, {**cls.TINY_CONV, **STEPS, "arch": "conv", **kw}), "embedded"
    return tasks.make_config(name, {**cls.TINY, **STEPS, **kw}), cls.TINY_DATA


def colour_arrays(n_per_class: int = 40, side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Tiny colour images [N, side, side, 3]: class k is a red, green or blue 3x3 square on white, placed
    at random, with a little noise."""
    rng = np.random.default_rng(0)
    n = 3 * n_per_class
    x = np.full((n, side, side, 3), 230, np.int32) + rng.integers(-20, 20, (n, side, side, 3))
    y = np.repeat(np.arange(3), n_per_class).astype(np.int32)
    for i, (k, r, c) in enumerate(
        zip(y, rng.integers(0, side - 3, n), rng.integers(0, side - 3, n), strict=True)
    ):
        x[i, r : r + 3, c : c + 3] = 40
        x[i, r : r + 3, c : c + 3, k] = 220
    return np.clip(x, 0, 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def colour_spec(tmp_path_factory):
    """npz:PATH of tiny colour images with three named classes and their own test split."""
    x, y = colour_arrays()
    xt, yt = colour_arrays(8)
    path = tmp_path_factory.mktemp("colour") / "tiny-colour.npz"
    data.save_npz(path, x, y, class_names=("red", "green", "blue"), x_test=xt, y_test=yt)
    return f"npz:{path}"


CASES = [(n, "mlp") for n in sorted(TASKS)] + [
    (n, "conv") for n in sorted(TASKS) if hasattr(TASKS[n][0], "TINY_CONV")
]
COLOUR_CASES = [(n, arch, "colour") for n, arch in CASES]


# One jitted step of each (task, arch) on its tiny config: every scalar metric of the first step and the L1
# norm of what two steps moved the parameters (the first of a warm-up moves nothing), printed by this test
# on the CPU (jax 0.10.2). They pin the data split, the batch order, the initialisation, the loss and the
# update together; update only with a reason (the commit says which).
GOLDEN: dict[str, dict[str, float]] = {
    "mlp/mlp": {
        "accuracy": 0.03125,
        "grad_norm": 1.6127166,
        "loss": 2.3783698,
        "lr": 0.0,
        "update_l1_after_2": 5.8177093,
    },
    "mlp/conv": {
        "accuracy": 0.0625,
        "grad_norm": 1.0429801,
        "loss": 2.3487871,
        "lr": 0.0,
        "update_l1_after_2": 2.1214187,
    },
    "ae/mlp": {
        "grad_norm": 0.031249134,
        "loss": 0.69374871,
        "lr": 0.0020000001,
        "recon_bce": 0.69374871,
        "update_l1_after_2": 130.05978,
    },
    "ae/conv": {
        "grad_norm": 0.35998365,
        "loss": 0.69365907,
        "lr": 0.0020000001,
        "recon_bce": 0.69365907,
        "update_l1_after_2": 13.802464,
    },
    "gan/mlp": {
        "d_fake": 0.71838677,
        "d_grad_norm": 3.4456363,
        "d_loss": 1.8169775,
        "d_real": 0.66979694,
        "g_grad_norm": 0.69740874,
        "g_loss": 0.30608144,
        "lr": 0.00019999999,
        "r1_penalty": 1.0916352,
        "update_l1_after_2": 0.06399556,
    },
    "gan/conv": {
        "d_fake": 0.50364298,
        "d_grad_norm": 1.888308,
        "d_loss": 1.3595576,
        "d_real": 0.51803625,
        "g_grad_norm": 0.15989807,
        "g_loss": 0.85669112,
        "lr": 0.001,
        "r1_penalty": 0.11580494,
        "update_l1_after_2": 11.461803,
    },
    # the same on the tiny 8x8x3 colour images (colour_spec)
    "mlp/mlp/colour": {
        "accuracy": 0.46875,
        "grad_norm": 4.2480955,
        "loss": 1.4185793,
        "lr": 0.0,
        "update_l1_after_2": 2.3793354,
    },
    "mlp/conv/colour": {
        "accuracy": 0.125,
        "grad_norm": 3.016341,
        "loss": 1.5008169,
        "lr": 0.0,
        "update_l1_after_2": 0.27158885,
    },
    "ae/mlp/colour": {
        "grad_norm": 0.33868274,
        "loss": 0.72833979,
        "lr": 0.0020000001,
        "recon_bce": 0.72833979,
        "update_l1_after_2": 38.397205,
    },
    "ae/conv/colour": {
        "grad_norm": 0.088685833,
        "loss": 0.69256341,
        "lr": 0.0020000001,
        "recon_bce": 0.69256341,
        "update_l1_after_2": 3.3343085,
    },
    "gan/mlp/colour": {
        "d_fake": 0.61134297,
        "d_grad_norm": 1.0671202,
        "d_loss": 1.3239298,
        "d_real": 0.68758833,
        "g_grad_norm": 0.19030295,
        "g_loss": 0.54507983,
        "lr": 0.001,
        "r1_penalty": 0.64895821,
        "update_l1_after_2": 9.9592166,
    },
    "gan/conv/colour": {  # lr 2e-4, D 8e-4: the colour DCGAN row's
        "d_fake": 0.49188325,
        "d_grad_norm": 0.25348544,
        "d_loss": 1.4033417,
        "d_real": 0.48381227,
        "g_grad_norm": 0.049693014,
        "g_loss": 0.70664561,
        "lr": 0.00019999999,
        "r1_penalty": 0.044980276,
        "update_l1_after_2": 2.4204188,
    },
}


def one_step_numbers(m: dict, before, after) -> dict[str, float]:
    got = {k: float(v) for k, v in m.items() if np.ndim(v) == 0}
    moved = jax.tree.map(lambda a, b: np.abs(np.asarray(b, np.float64) - np.asarray(a, np.float64)).sum(),
                         before, after)  # fmt: skip
    got["update_l1_after_2"] = float(sum(jax.tree.leaves(moved)))
    return got


def test_every_image_task_has_a_conv_variant():
    assert {n for n, arch in CASES if arch == "conv"} == {"mlp", "ae", "gan"}


@pytest.mark.parametrize("name,arch,images", [(n, a, "grey") for n, a in CASES] + COLOUR_CASES)
def test_task_contract(name, arch, images, tmp_path, capsys, request):
    cfg, spec = tiny(name, arch)
    if images == "colour":
        spec = request.getfixturevalue("colour_spec")
    ds = data.load(spec)
    task = tasks.build(cfg, ds)
    assert task.name == name and task.examples_per_step >= cfg.batch_size
    assert task.headline, "the progress bar needs a headline metric"

    init_key, data_key, loop_key = runtime.split_keys(cfg.seed)
    state = jax.jit(task.init)(init_key)
    batch = batches.batch_at(jax.device_put(ds.train), data_key, 0, task.examples_per_step)
    step = jax.jit(task.step)
    new_state, m = step(state, batch, jax.random.fold_in(loop_key, 0))
    assert int(new_state.step) == 1
    assert all(np.isfinite(np.asarray(v)).all() for v in m.values()), m
    for head in task.headline:
        assert head in m
    two = step(new_state, batch, jax.random.fold_in(loop_key, 1))[0]
    got = one_step_numbers(m, state.params, two.params)
    case = f"{name}/{arch}" + ("/colour" if images == "colour" else "")
    print(f"golden {case}:", {k: float(f"{v:.8g}") for k, v in sorted(got.items())})
    golden = GOLDEN.get(case)
    assert golden is not None, f"no golden values for {case}: add the line printed above (-s)"
    assert set(golden) == set(got), sorted(set(golden) ^ set(got))
    for k, v in golden.items():
        np.testing.assert_allclose(got[k], v, rtol=2e-4, atol=1e-7, err_msg=f"{case} {k}")

    scores = task.evaluate(jax.device_get(new_state.params), ds.test, runtime.eval_key(cfg.seed))
    assert scores and all(isinstance(v, (int, float, list)) for v in scores.values()), scores

    if hasattr(task, "sample"):
        x = np.asarray(task.sample(new_state.params, runtime.eval_key(0), 7))
        assert x.shape == (7, *ds.train["image"].shape[1:]) and x.dtype == np.float32
        if ds.kind == "image":
            assert 0 <= x.min() and x.max() <= 1

    # Straight run vs. a run cut back to its step-6 checkpoint and resumed: the same bits.
    straight = train.train(cfg, tmp_path / "straight", spec, progress=False, make_plots=False)
    assert straight["step"] == 12 and straight["task"] == name
    json.dumps(straight)  # the summary is JSON (no NaN, no arrays)
    if images == "colour":  # resume is shape-blind: pinned once per (task, arch), on the grey images
        restored = runs.restore_for_eval(tmp_path / "straight")
        assert restored.task.shape == ds.shape and restored.params_sha256 == straight["params_sha256"]
        return
    shutil.copytree(tmp_path / "straight", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "12")
    resumed = train.train(cfg, tmp_path / "cut", spec, progress=False, make_plots=False)
    assert "resuming from step 6" in capsys.readouterr().err
    assert resumed["params_sha256"] == straight["params_sha256"]
    _, restored_state, _, _, _, *_ = runs.restore_for_eval(tmp_path / "cut")
    _, straight_state, _, _, _, *_ = runs.restore_for_eval(tmp_path / "straight")
    # every leaf of the state, optimizer states (all of them) included
    for a, b in zip(jax.tree.leaves(restored_state), jax.tree.leaves(straight_state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
