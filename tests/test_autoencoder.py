"""The autoencoder task: exact parameter counts, losses by hand, loss falls, evaluation figures, samples
and plots from a checkpoint alone, and user mistakes in one line."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgen import cli, data, models, runs, runtime, tasks, train
from jaxgen.data import batches
from jaxgen.errors import UserError
from jaxgen.tasks.autoencoder import kl_to_standard_normal, pixel_bce


def build(**kw):
    return tasks.build(tasks.make_config("ae", kw), data.load("embedded"))


def test_exact_parameter_count():
    p = build().init(jax.random.key(0)).params  # 784-512-256-32-256-512-784
    enc = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 32 + 32
    dec = 32 * 256 + 256 + 256 * 512 + 512 + 512 * 784 + 784
    assert models.param_count(p) == enc + dec
    v = build(variational=True, hidden=(64,), latent_dim=2).init(jax.random.key(0)).params
    assert models.param_count(v) == (784 * 64 + 64 + 64 * 4 + 4) + (2 * 64 + 64 + 64 * 784 + 784)


def test_bce_from_logits_and_kl_by_hand():
    logits = jnp.array([[0.0, 2.0]])
    x = jnp.array([[1.0, 0.25]])
    sig = 1 / (1 + np.exp(-2.0))
    by_hand = (-np.log(0.5) - (0.25 * np.log(sig) + 0.75 * np.log(1 - sig))) / 2
    assert float(pixel_bce(logits, x)[0]) == pytest.approx(by_hand, rel=1e-6)
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2 per dimension
    mu, logvar = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, np.log(4.0)]])
    expected = (1 + 1 - 1 - 0) / 2 + (0 + 4 - 1 - np.log(4.0)) / 2
    assert float(kl_to_standard_normal(mu, logvar)[0]) == pytest.approx(expected, rel=1e-6)
    assert float(kl_to_standard_normal(jnp.zeros((1, 3)), jnp.zeros((1, 3)))[0]) == 0.0


@pytest.mark.parametrize("variational", [False, True])
def test_loss_falls_on_one_batch(variational):
    task = build(hidden=(64,), latent_dim=8, augment=False, variational=variational, lr=3e-3)
    init_key, data_key, loop_key = runtime.split_keys(0)
    state = task.init(init_key)
    batch = batches.batch_at(jax.device_put(data.load("embedded").train), data_key, 0, 64)
    step = jax.jit(task.step)
    losses = []
    for i in range(60):
        state, m = step(state, batch, jax.random.fold_in(loop_key, i))
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.6 * losses[0]
    if variational:
        assert float(m["kl"]) > 0


def test_denoising_input_is_noisier_than_the_target():
    task = build(hidden=(16,), latent_dim=2, noise=0.3)
    state = task.init(jax.random.key(0))
    batch = {"image": jnp.zeros((4, 28, 28, 1), jnp.uint8), "label": jnp.zeros((4,), jnp.int32)}
    # zero images with noise: the reconstruction target stays zero, so the loss is finite and positive
    _, m = jax.jit(task.step)(state, batch, jax.random.key(1))
    assert float(m["loss"]) > 0


@pytest.fixture
def ae_run(tiny_runs):
    """The shared tiny latent-2 AE run (conftest.TINY_RUNS) and its summary."""
    wd = tiny_runs("ae")
    return wd, json.loads((wd.parent / "summary.json").read_text())


def test_eval_reports_every_contract_figure(ae_run, capsys):
    wd, summary = ae_run
    assert cli.main(["eval", str(wd)]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in (
        "recon_bce",
        "recon_mse",
        "pca_recon_bce",
        "pca_recon_mse",
        "latent_knn_accuracy",
        "pca_knn_accuracy",
        "sharpness_ratio",
    ):
        assert isinstance(ev[k], float) and ev[k] >= 0, k
    assert ev["task"] == "ae" and ev["step"] == 40 and ev["params_sha256"] == summary["params_sha256"]
    assert ev["n"] == 500 and 0 < ev["latent_knn_accuracy"] <= 1
    # the training summary carries the same test figures, integers as integers
    assert summary["test_n"] == 500 and summary["test_recon_bce"] == pytest.approx(ev["recon_bce"], rel=1e-5)


def test_plots_and_samples_from_a_checkpoint_alone(ae_run, tmp_path, capsys):
    wd, _ = ae_run
    names = {"reconstructions", "latent_space", "digit_means", "interpolation", "samples", "latent_grid"}
    assert {p.stem for p in (wd / "plots").glob("*.png")} >= names | {"curves"}
    copy = tmp_path / "copy"
    shutil.copytree(wd, copy)
    shutil.rmtree(copy / "plots")
    assert cli.main(["plot", str(copy)]) == 0
    assert {p.stem for p in (copy / "plots").glob("*.png")} >= names
    out = tmp_path / "s.npy"
    assert cli.main(["sample", str(copy), "--n", "33", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (33, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert x.reshape(33, 784).shape == (33, 784)  # tools that read the old flat rows reshape, as before
    again = tmp_path / "t.npy"
    assert cli.main(["sample", str(copy), "--n", "33", "--out", str(again)]) == 0
    np.testing.assert_array_equal(np.load(again), x)  # the run's fixed key: same samples
    capsys.readouterr()


def test_sample_out_png_is_a_near_square_grid_of_the_samples(ae_run, tmp_path, capsys):
    wd, _ = ae_run
    out = tmp_path / "s.png"
    assert cli.main(["sample", str(wd), "--n", "10", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["shape"] == [10, 28, 28, 1]
    png = Image.open(out)
    assert png.mode == "RGB" and png.size == (4 * 30 - 2, 3 * 30 - 2)  # 4 columns, 3 rows of 28 + 2 px gaps
    x = np.asarray(png)
    assert (x[:, 28:30] == 255).all() and (x[:, -28:][60:] == 255).all()  # white gaps, white after the 10th
    assert cli.main(["sample", str(wd), "--out", str(tmp_path / "s.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".npy" in err and ".png" in err and not (tmp_path / "s.jpg").exists()


def test_vae_samples_from_the_prior_and_reports_kl_and_elbo(tmp_path):
    cfg = tasks.make_config(
        "ae",
        {"hidden": (32,), "latent_dim": 3, "variational": True, "steps": 6, "ckpt_every": 6, "log_every": 6},
    )
    summary = train.train(cfg, tmp_path / "vae", "embedded", progress=False, make_plots=False)
    assert summary["test_kl"] >= 0 and summary["test_elbo"] < 0
    task, state, *_ = runs.restore_for_eval(tmp_path / "vae")
    x = task.sample(state.params, jax.random.key(0), 5)
    assert x.shape == (5, 28, 28, 1) and 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"latent_dim": 0}, "latent_dim must be in"),
        ({"latent_dim": 4097}, "latent_dim must be in"),
        ({"variational": True, "loss": "mse"}, "loss=bce"),
        ({"loss": "l1"}, "bce or mse"),
        ({"noise": -0.1}, "noise"),
    ],
)
def test_bad_config_one_line(overrides, match):
    with pytest.raises(UserError, match=match):
        tasks.make_config("ae", overrides)


def test_a_code_wider_than_the_image_is_one_line():
    with pytest.raises(UserError, match=r"latent_dim 785 is wider than an image of embedded \(784 numbers\)"):
        tasks.build(tasks.make_config("ae", {"latent_dim": 785}), data.load("embedded"))


def test_ae_on_toy_data_and_sample_of_a_classifier_are_refused(tmp_path, capsys):
    assert cli.main(["train", "ae", "--workdir", str(tmp_path / "t"), "--data", "toy:ring8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ae trains on images" in err
    assert not (tmp_path / "t").exists()
    mlp = tmp_path / "mlp"
    cfg = tasks.make_config(
        "mlp", {"hidden": (8,), "steps": 2, "ckpt_every": 2, "log_every": 2, "warmup_steps": 0}
    )
    train.train(cfg, mlp, "embedded", progress=False, make_plots=False)
    assert cli.main(["sample", str(mlp), "--out", str(tmp_path / "x.npy")]) == 2
    assert "does not generate" in capsys.readouterr().err
    assert cli.main(["sample", str(mlp), "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert ".npy" in err and ".png" in err and err.count("\n") == 1


def test_judge_scores_samples_and_refuses_a_non_mlp_run(ae_run, tmp_path, capsys):
    wd, _ = ae_run
    judge = tmp_path / "judge"
    cfg = tasks.make_config(
        "mlp", {"hidden": (16,), "steps": 4, "ckpt_every": 4, "log_every": 4, "warmup_steps": 0}
    )
    train.train(cfg, judge, "embedded", progress=False, make_plots=False)
    out = tmp_path / "s.npy"
    assert cli.main(["sample", str(wd), "--n", "50", "--out", str(out), "--judge", str(judge)]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["quality"]["mlp"]
    assert rep["n"] == 50 and set(rep) >= {"samples", "real", "training", "ppca", "reference_class_shares"}
    for name in ("samples", "real", "training", "ppca"):
        m = rep[name]
        assert len(m["class_shares"]) == 10 and sum(m["class_shares"]) == pytest.approx(1, abs=1e-3)
        assert 0.1 <= m["confidence"] <= 1 and m["frechet"] >= 0 and 0 <= m["coverage"] <= 1, name
    assert cli.main(["eval", str(wd), "--judge", str(judge)]) == 0
    assert (
        "min_class_share"
        in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["quality"]["mlp"]["samples"]
    )
    assert cli.main(["eval", str(wd), "--judge", str(wd)]) == 2
    assert "must be an mlp run" in capsys.readouterr().err
    assert cli.main(["eval", str(wd), "--judge", str(tmp_path / "nowhere")]) == 2
    assert "no jaxgen run there" in capsys.readouterr().err


def test_checkpoint_evaluation_subsamples_the_reference_and_full_uses_all(monkeypatch):
    from jaxgen.tasks import autoencoder

    monkeypatch.setattr(autoencoder, "REFERENCE_N", 1000)
    fits = []
    pca_fit = autoencoder.metrics.pca_fit
    monkeypatch.setattr(autoencoder.metrics, "pca_fit", lambda x, k: fits.append(len(x)) or pca_fit(x, k))
    task = build(hidden=(16,), latent_dim=2)
    params = task.init(jax.random.key(0)).params
    test = {k: v[:100] for k, v in task.ds.test.items()}
    n_train = len(task.ds.train["label"])
    ckpt = task.evaluate(params, test, jax.random.key(1))
    full = task.evaluate(params, test, jax.random.key(1), full=True)
    assert ckpt["knn_reference_n"] == 1000 < n_train == full["knn_reference_n"]
    assert fits == [1000] and ckpt["pca_fit_n"] == full["pca_fit_n"] == 1000  # PCA fitted once per task
    assert ckpt["pca_recon_bce"] == full["pca_recon_bce"] and ckpt["recon_bce"] == full["recon_bce"]
    # the subsample: fixed (whatever the task object), distinct training rows in training order
    x, y = task.train_images(1000)
    again, _ = build(hidden=(16,), latent_dim=2).train_images(1000)
    np.testing.assert_array_equal(x, again)
    all_x, all_y = task.train_images()
    rows = {r.tobytes(): i for i, r in enumerate(all_x)}
    idx = [rows[r.tobytes()] for r in x]
    assert len(set(idx)) == 1000 and idx == sorted(idx) and np.array_equal(all_y[idx], y)


def test_reference_is_the_whole_split_in_order_when_it_is_small_enough():
    from jaxgen.tasks import autoencoder

    task = build(hidden=(16,), latent_dim=2)
    assert len(task.ds.train["label"]) <= autoencoder.REFERENCE_N
    for a, b in zip(task.train_images(autoencoder.REFERENCE_N), task.train_images(), strict=True):
        np.testing.assert_array_equal(a, b)
