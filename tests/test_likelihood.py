"""A VAE's likelihood: the importance-sampled estimate never below the same draws' ELBO and tightening
with k, the IWAE objective, dynamic and fixed binarisation, the IWAE paper's preset and schedule, and
`jaxgen eval --nll-k` (user mistakes in one line)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxgen import cli, config, data, runtime, tasks
from jaxgen.data import batches
from jaxgen.errors import UserError
from jaxgen.tasks.autoencoder import binarized, log_weights, lr_schedule

TINY = {"hidden": (32,), "latent_dim": 4, "variational": True, "augment": False}


@pytest.fixture(scope="module")
def vae():
    """A tiny VAE after 150 steps on the embedded digits, and 48 of its test images (binarised)."""
    task = tasks.build(tasks.make_config("ae", {**TINY, "lr": 3e-3}), data.load("embedded"))
    init_key, data_key, loop_key = runtime.split_keys(0)
    state = task.init(init_key)
    train = jax.device_put(data.load("embedded").train)
    step = jax.jit(task.step)
    for i in range(150):
        state, _ = step(state, batches.batch_at(train, data_key, i, 64), jax.random.fold_in(loop_key, i))
    x = binarized(np.asarray(data.load("embedded").test["image"][:48], np.float32) / 255.0)
    return task, state.params, x


def test_log_weights_are_the_three_densities():
    z, eps, logvar = np.array([[[0.3, -1.2]]]), np.array([[[0.5, 2.0]]]), np.array([[0.1, -0.4]])
    nll = np.array([[7.0]])
    mu = z[0] - np.exp(0.5 * logvar) * eps[0]
    expected = -7.0 + norm.logpdf(z).sum() - norm.logpdf(z[0], mu, np.exp(0.5 * logvar)).sum()
    got = float(log_weights(jnp.asarray(nll), jnp.asarray(z), jnp.asarray(eps), jnp.asarray(logvar))[0, 0])
    assert got == pytest.approx(expected, rel=1e-5)


def test_importance_estimate_is_above_its_elbo_and_tightens_with_k(vae):
    task, params, x = vae
    means = {}
    for k in (1, 10, 200):
        log_px, elbo = task.log_likelihood(params, x, jax.random.key(1), k)
        assert log_px.shape == elbo.shape == (len(x),)
        assert np.all(log_px >= elbo - 1e-6)  # Jensen, draw by draw
        if k == 1:
            np.testing.assert_allclose(log_px, elbo, rtol=1e-9)  # one draw: the estimate is the ELBO
        means[k] = log_px.mean()
    assert means[1] < means[10] < means[200]
    # a batch of any size gives each image the same estimate (the batching is bookkeeping only)
    few, _ = task.log_likelihood(params, x[:5], jax.random.key(1), 10)
    assert np.all(np.isfinite(few)) and few.shape == (5,)


def test_iwae_objective_is_the_bound_of_its_draws():
    """iw_k > 1 trains on -(logsumexp log w - log k) / D, which is no looser than the ELBO of the draws."""
    task = tasks.build(tasks.make_config("ae", {**TINY, "iw_k": 8}), data.load("embedded"))
    state = task.init(jax.random.key(0))
    x = batches.normalise(jnp.asarray(data.load("embedded").train["image"][:16]))
    trainable, stats = tasks.base.split_variables(state.params)
    loss, (parts, _) = task.loss(trainable, stats, x, x, jax.random.key(3))
    assert float(loss) == pytest.approx(-float(parts["iw_bound"]) / task.dim, rel=1e-6)
    mu, logvar = task.model.apply(state.params, x, method=task.model.encode)
    elbo = -(float(parts["recon_bce"]) * task.dim + float(kl := parts["kl"]))
    assert float(kl) > 0 and float(parts["iw_bound"]) >= elbo - 5.0  # sampled, not analytic: a loose check
    new, _ = jax.jit(task.step)(
        state, {"image": data.load("embedded").train["image"][:16]}, jax.random.key(4)
    )
    assert int(new.step) == 1


def test_binarisation_is_reproducible_from_the_seed():
    x = np.linspace(0, 1, 4000, dtype=np.float32).reshape(5, 20, 40, 1)
    a, b, c = binarized(x, 0), binarized(x, 0), binarized(x, 1)
    assert set(np.unique(a)) <= {0.0, 1.0} and np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean() - x.mean()) < 0.02 and a[x == 0].max() == 0 and a[x == 1].min() == 1


def test_dynamic_binarisation_draws_afresh_each_step():
    task = tasks.build(tasks.make_config("ae", {**TINY, "binarize": "dynamic"}), data.load("embedded"))
    batch = {"image": jnp.asarray(data.load("embedded").train["image"][:8])}
    first, target = task.inputs(batch, jax.random.key(0))
    again, _ = task.inputs(batch, jax.random.key(0))
    other, _ = task.inputs(batch, jax.random.key(1))
    assert set(np.unique(np.asarray(first))) == {0.0, 1.0} and np.array_equal(first, target)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    grey, _ = tasks.build(tasks.make_config("ae", TINY), data.load("embedded")).inputs(
        batch, jax.random.key(0)
    )
    assert len(np.unique(np.asarray(grey))) > 2  # binarize=none keeps the intensities


def test_the_iwae_preset_and_its_schedule():
    cfg = tasks.make_config("ae", {"preset": "iwae", "iw_k": 5, "steps": 3280})
    assert (cfg.hidden, cfg.latent_dim, cfg.activation, cfg.batch_size) == ((200, 200), 50, "tanh", 20)
    assert (cfg.iw_k, cfg.binarize, cfg.adam_eps, cfg.schedule, cfg.augment) == (
        5,
        "dynamic",
        1e-4,
        "burda",
        False,
    )
    assert config.from_dict(type(cfg), config.to_dict(cfg)) == cfg  # the record rebuilds the same run
    lr = lr_schedule(cfg)  # stages of 3^i epochs out of 3,280: boundaries at 1, 4, 13, 40, 121, 364, 1093
    for step, i in ((0, 0), (1, 1), (3, 1), (4, 2), (1092, 6), (1093, 7), (3279, 7)):
        assert float(lr(step)) == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-5), step
    with pytest.raises(UserError, match="iw_k > 1 is the IWAE bound of a VAE"):
        tasks.make_config("ae", {"iw_k": 5})
    with pytest.raises(UserError, match="preset=iwae is an arch=mlp network: drop --set arch=conv"):
        tasks.make_config("ae", {"preset": "iwae", "arch": "conv"})
    with pytest.raises(UserError, match="preset must be one of none, iwae"):
        tasks.make_config("ae", {"preset": "vq"})
    with pytest.raises(UserError, match="binarize must be one of none, dynamic"):
        tasks.make_config("ae", {"binarize": "fixed"})


def test_eval_reports_the_likelihood_and_refuses_bad_k(tiny_runs, capsys):
    vae_run = tiny_runs("vae")
    assert cli.main(["eval", str(vae_run), "--nll-k", "20"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["nll_is_k"] == 20 and out["nll_is"] > 0 and -out["elbo_mc"] >= out["nll_is"]
    assert out["nll_is_bits_per_dim"] == pytest.approx(out["nll_is"] / (784 * np.log(2)))
    assert cli.main(["eval", str(vae_run), "--nll-k", "-1"]) == 2
    assert "--nll-k must be in [0, 100000]" in capsys.readouterr().err
    assert cli.main(["eval", str(tiny_runs("ae")), "--nll-k", "5"]) == 2
    assert "is no VAE run: drop --nll-k" in capsys.readouterr().err


def test_a_conv_vae_is_estimated_in_smaller_batches_with_the_same_guarantee(monkeypatch):
    from jaxgen.tasks import autoencoder

    monkeypatch.setitem(autoencoder.NLL_ROWS, "conv", 4)  # one image a call, 4 of its 8 draws at a time
    tiny = {"arch": "conv", **tasks.config_class("ae").TINY_CONV, "variational": True, "augment": False}
    task = tasks.build(tasks.make_config("ae", tiny), data.load("embedded"))
    params = task.init(jax.random.key(0)).params
    x = binarized(np.asarray(data.load("embedded").test["image"][:7], np.float32) / 255.0)
    log_px, elbo = task.log_likelihood(params, x, jax.random.key(2), 8)
    assert log_px.shape == (7,) and np.all(np.isfinite(log_px)) and np.all(log_px >= elbo - 1e-6)
