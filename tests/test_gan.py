"""The GAN task: one step against golden values, mode metrics with known answers,
sample shapes and ranges, the D* check, and one-line errors for bad input. The generic contract
(checkpoint + bit-exact resume of both optimizers) runs in tests/test_tasks.py.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgen import cli, config, data, metrics, runtime, tasks
from jaxgen.data import batches
from jaxgen.errors import UserError
from jaxgen.tasks import gan
from jaxgen.tasks import gan as gan_task


def tiny_gan(spec="toy:ring8", **kw):
    cfg = tasks.make_config("gan", {**gan_task.GANConfig.TINY, "steps": 10, **kw})
    return tasks.build(cfg, data.load(spec))


# ------------------------------------------------ packing (the losses by hand: tests/test_gan_losses.py)


def test_pack_rows():
    x = jnp.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(gan.pack_rows(x, 2), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])


# ---------------------------------------------------------------- one step, golden values


GOLDEN = {  # printed by test_one_step_golden (jax 0.10.2, CPU); update only with a reason
    "d_loss": 1.83214521,
    "g_loss": 0.30712897,
    "d_real": 0.71588302,
    "d_fake": 0.73605001,
    "r1_penalty": 1.26765454,
}


def test_one_step_golden():
    task = tiny_gan(r1=0.5, d_steps=2)
    init_key, data_key, loop_key = runtime.split_keys(0)
    state = jax.jit(task.init)(init_key)
    batch = batches.batch_at(jax.device_put(task_data("toy:ring8")), data_key, 0, task.examples_per_step)
    assert batch["image"].shape == (2 * 32, 2)  # d_steps real batches drawn at once
    new, m = jax.jit(task.step)(state, batch, jax.random.fold_in(loop_key, 0))
    got = {k: round(float(m[k]), 8) for k in GOLDEN}
    print("golden:", got)
    for k, v in GOLDEN.items():
        np.testing.assert_allclose(got[k], v, rtol=2e-4, atol=1e-7, err_msg=k)
    assert int(new.step) == 1
    assert int(new.opt_state["d"][0].count) == 2 and int(new.opt_state["g"][0].count) == 1
    # the EMA moved by (1 - ema) of G's step
    g0, g1, e1 = (jax.tree.leaves(t)[0] for t in (state.params["g"], new.params["g"], new.params["g_ema"]))
    np.testing.assert_allclose(e1, g0 + (1 - task.cfg.ema) * (g1 - g0), rtol=1e-5, atol=1e-7)


def task_data(spec):
    return data.load(spec).train


def test_step_is_deterministic_in_its_key():
    task = tiny_gan()
    state = task.init(jax.random.key(1))
    batch = {"image": jnp.ones((32, 2)), "label": jnp.zeros(32, jnp.int32)}
    step = jax.jit(task.step)
    a = step(state, batch, jax.random.key(2))[1]["g_loss"]
    b = step(state, batch, jax.random.key(2))[1]["g_loss"]
    c = step(state, batch, jax.random.key(3))[1]["g_loss"]
    assert a == b and a != c


# ---------------------------------------------------------------- defaults chosen for the data


def test_resolve_defaults_per_data_kind():
    assert tiny_gan("toy:ring8").resolved["pack"] == 2
    img = tasks.build(tasks.make_config("gan", {"hidden": (8,)}), data.load("embedded"))
    assert (img.cfg.pack, img.cfg.r1, img.cfg.ema) == (1, 10.0, 0.999)
    assert (img.cfg.batch_size, img.cfg.steps) == (256, 10000)
    assert tiny_gan(pack=4, r1=0.0, ema=0.0).resolved == {
        "steps": 10,
        "batch_size": 32,
        "latent_dim": 2,
        "lr": 2e-4,
        "pack": 4,
        "r1": 0.0,
        "ema": 0.0,
        "d_lr": 2e-4,
        "decay": True,
        "topk": 1.0,
        "diffaug": "none",
    }
    # steps (not set): chosen for the data, and what the driver runs
    assert img.cfg.steps == 10000
    # R1: none on the toys but grid25 (0.3), 10 on images; an explicit r1 always wins
    grid = tasks.build(tasks.make_config("gan", {"hidden": (8,)}), data.load("toy:grid25"))
    assert (grid.cfg.r1, grid.cfg.steps, tiny_gan("toy:ring8", r1=None).cfg.r1) == (0.3, 60000, 0.0)
    assert tasks.build(tasks.make_config("gan", {"r1": 0.0}), data.load("toy:grid25")).cfg.r1 == 0.0
    grid = tasks.build(tasks.make_config("gan"), data.load("toy:grid25"))
    assert grid.cfg.steps == 60000 and tasks.make_config("gan").steps is None
    assert (grid.cfg.latent_dim, img.cfg.latent_dim) == (2, 16)  # as wide as the data; 16 for images


def test_diffaug_on_toy_points_is_refused_in_one_line():
    with pytest.raises(UserError, match="diffaug moves image pixels.*--set diffaug=none"):
        tiny_gan("toy:ring8", diffaug="translate")


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_diffaug_transforms_what_d_sees_and_g_learns_through_it():
    """DiffAugment: D's logits on the real rows are those of the transformed images (R1 acts on them),
    the gradient passes through the transforms to the fake pixels they keep, and the step runs them."""
    conv = {**gan_task.GANConfig.TINY_CONV, "arch": "conv", "steps": 10}
    plain = tasks.build(tasks.make_config("gan", conv), data.load("embedded"))
    aug = tasks.build(
        tasks.make_config("gan", {**conv, "diffaug": "translate:2,cutout:6"}), data.load("embedded")
    )
    assert aug.diffaug == (("translate", 2), ("cutout", 6)) and plain.diffaug == ()
    state = plain.init(jax.random.key(0))
    real = jnp.asarray(data.load("embedded").train["image"][:16], jnp.float32) / 255.0
    fake = plain.sample(state.params, jax.random.key(1), 16)
    key = jax.random.key(2)
    _, (_, _, real_logits, _) = aug.d_objective(state.params["d"], real, fake, key)
    real_key, _ = jax.random.split(key)
    moved = gan_task.diffaug(real_key, real, aug.diffaug)
    assert not np.allclose(moved, real)
    np.testing.assert_allclose(
        real_logits, plain.d_model.apply(state.params["d"], moved), rtol=1e-5, atol=1e-6
    )
    # the gradient a fake image gets through the transforms: none inside the cut-out square, some outside
    ops = (("cutout", 6),)  # (a translation would move the pixels the mask is read at)
    d_of = lambda f: plain.d_model.apply(state.params["d"], gan_task.diffaug(key, f, ops)).sum()  # noqa: E731
    grad = np.asarray(jax.grad(d_of)(fake)).reshape(16, 28, 28)
    cut = np.asarray(gan_task.diffaug(key, jnp.ones_like(fake), ops)).reshape(16, 28, 28) == 0
    assert cut.any() and (grad[cut] == 0).all() and (np.abs(grad).sum((1, 2)) > 0).all()
    # and the step wires it: one jitted step (no R1, to compile quickly) with finite losses
    quick = tasks.build(
        tasks.make_config("gan", {**conv, "r1": 0.0, "diffaug": "translate"}), data.load("embedded")
    )
    batch = {"image": data.load("embedded").train["image"][:16], "label": jnp.zeros(16, jnp.int32)}
    _, m = jax.jit(quick.step)(state, batch, jax.random.key(3))
    assert np.isfinite(float(m["d_loss"])) and float(m["g_grad_norm"]) > 0


def test_top_k_mean_keeps_the_best_scored():
    from jaxgen.tasks.gan import top_k_mean

    values = jnp.array([1.0, 2.0, 3.0, 4.0])
    scores = jnp.array([0.1, 0.9, 0.5, 0.3])
    assert float(top_k_mean(values, scores, 0.5)) == 2.5  # rows with scores 0.9 and 0.5
    assert float(top_k_mean(values, scores, 1.0)) == 2.5 == float(values.mean())
    assert float(top_k_mean(values, scores, 0.01)) == 2.0  # at least one row


# ---------------------------------------------------------------- mode metrics with known answers


def test_mode_coverage_known_answers():
    centers, std = data.TOYS["ring8"]
    rng = np.random.default_rng(0)
    # 2,500 samples: 300 exactly on each of modes 0..6, 19 on mode 7 (< 20: not covered), the rest far off
    on = np.concatenate([np.repeat(centers[:7], 300, 0), np.repeat(centers[7:], 19, 0)])
    off = rng.uniform(-0.5, 0.5, (2500 - len(on), 2))  # inside the ring: > 3 std from every mode
    m = metrics.mode_coverage(np.concatenate([on, off]), centers, std)
    assert m == {"modes_covered": 7, "modes_total": 8, "hq_fraction": len(on) / 2500}
    # at 2.9 std from the mean: high quality; at 3.1 std: not
    near = centers[:1] + [[2.9 * std, 0.0]]
    far = centers[:1] + [[3.1 * std, 0.0]]
    assert metrics.mode_coverage(near, centers, std)["hq_fraction"] == 1.0
    assert metrics.mode_coverage(far, centers, std)["hq_fraction"] == 0.0


def test_evaluate_on_toys_reports_the_contract_keys():
    task = tiny_gan()
    state = task.init(jax.random.key(0))
    scores = task.evaluate(state.params, data.load("toy:ring8").test, jax.random.key(1))
    assert {"modes_covered", "modes_total", "hq_fraction", "d_real_mean", "d_fake_mean"} <= set(scores)
    assert isinstance(scores["modes_covered"], int) and scores["modes_total"] == 8


def test_dstar_check_on_gauss1d():
    task = tiny_gan("toy:gauss1d", pack=1)
    params = task.init(jax.random.key(0)).params
    x = np.random.default_rng(0).normal(4.0, 0.5, (2500, 1)).astype(np.float32)  # p_g = p_data: D* = ½
    r = task.dstar(params, x)
    assert np.all(np.abs(r["d_star"][r["p_data"] > 0.05] - 0.5) < 0.1)
    assert 0 <= r["distance"] <= 1
    assert "dstar_distance" in task.evaluate(params, data.load("toy:gauss1d").test, jax.random.key(1))


# ---------------------------------------------------------------- sample


@pytest.mark.parametrize(
    "spec, shape", [("toy:ring8", (2,)), ("toy:gauss1d", (1,)), ("embedded", (28, 28, 1))]
)
def test_sample_shapes_and_range(spec, shape):
    task = tiny_gan(spec)
    params = task.init(jax.random.key(0)).params
    x = task.sample(params, jax.random.key(1), 5)
    assert x.shape == (5, *shape) and x.dtype == np.float32
    if spec == "embedded":
        assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(x, task.sample(params, jax.random.key(1), 5))


# ---------------------------------------------------------------- bad input: one line naming the fix


@pytest.mark.parametrize(
    "sets, match",
    [
        (["d_steps=0"], "d_steps must be in \\[1, 100\\].*--set d_steps=1"),
        (["loss=wasserstein"], "loss must be one of nonsaturating, .*--set loss="),
        (["pack=3"], "batch_size 256 must be a multiple of pack 3"),
        (["r1=-2"], "r1 must be >= 0"),
        (["ema=1"], "ema must be in \\[0, 1\\)"),
        (["diffaug=rotate"], "diffaug must be none or a comma list.*--set diffaug=translate:2"),
        (["diffaug=translate:20"], "diffaug must be none or a comma list"),
    ],
)
def test_bad_config_is_one_line(sets, match):
    """Bad values: one line naming the fix, from the config or, for what needs the data's defaults (a
    pack that does not divide the batch chosen for the data), from resolve, before anything compiles."""
    with pytest.raises(UserError, match=match):
        cfg = tasks.make_config("gan", config.parse_sets(tasks.config_class("gan"), sets))
        tasks.resolve(cfg, data.load("embedded"))


def test_bad_config_from_the_cli(tmp_path, capsys):
    assert cli.main(["train", "gan", "--workdir", str(tmp_path / "r"), "--set", "d_steps=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "d_steps" in err
    assert not (tmp_path / "r").exists()  # rejected before anything was written or compiled


@pytest.fixture
def gan_run(tiny_runs):
    return tiny_runs("gan")


def test_judge_must_be_an_mlp_run(gan_run, tmp_path, capsys):
    assert cli.main(["eval", str(gan_run), "--judge", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no jaxgen run there" in err and "jaxgen train mlp" in err and err.count("\n") == 1
    assert cli.main(["eval", str(gan_run), "--judge", str(gan_run)]) == 2
    err = capsys.readouterr().err
    assert "is a gan run: the judge must be an mlp run" in err and err.count("\n") == 1


def test_run_writes_snapshots_figures_and_samples(gan_run, tmp_path, capsys):
    assert sorted(int(p.stem) for p in (gan_run / "samples").glob("*.npy")) == [2, 4]
    for name in ("gan_curves.png", "progress.png", "samples.png"):
        assert (gan_run / "plots" / name).exists(), name
    out = tmp_path / "s.npy"
    assert cli.main(["sample", str(gan_run), "--n", "9", "--out", str(out)]) == 0
    assert np.load(out).shape == (9, 2)
    capsys.readouterr()  # an older checkpoint by its step: other samples, that step named
    assert cli.main(["sample", str(gan_run), "--n", "9", "--out", str(out), "--checkpoint", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2
    # a picture of toy points: the samples scattered over the test data
    assert cli.main(["sample", str(gan_run), "--n", "300", "--out", str(tmp_path / "s.png")]) == 0
    png = np.asarray(Image.open(tmp_path / "s.png"))
    assert png.ndim == 3 and png.shape[-1] == 3 and min(png.shape[:2]) >= 300 and png.std() > 0
    capsys.readouterr()
    assert cli.main(["eval", str(gan_run)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"modes_covered"' in line and '"hq_fraction"' in line and '"d_fake_mean"' in line
