"""The GAN's table of losses (jaxgen.tasks.gan_losses): each game in closed form on given logits, the
gradient penalty on a linear critic, the config's names and refusals, one tiny step per loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import configs, data, runtime, tasks
from jaxgen.configs import gan as gan_config
from jaxgen.data import batches
from jaxgen.errors import UserError
from jaxgen.tasks import gan_losses
from jaxgen.tasks.gan import GANConfig

LOG2 = np.log(2.0)
L = gan_losses.LOSSES


def sigmoid(t):
    return 1 / (1 + np.exp(-np.asarray(t, np.float64)))


def test_config_names_the_same_losses_as_the_table():
    assert tuple(L) == gan_config.LOSSES  # configs/gan.py stays JAX-free: the names are written twice


# ---------------------------------------------------------------- each loss in closed form


@pytest.mark.parametrize("name", gan_config.LOSSES)
def test_at_logits_zero_d_cannot_tell(name):
    d, g = jax.jit(L[name].fn)(jnp.zeros(4), jnp.zeros(4))
    np.testing.assert_allclose((d, g), L[name].at_zero, rtol=1e-6, atol=1e-7)


def test_equilibrium_values_by_hand():
    assert np.allclose(L["saturating"].at_zero, (2 * LOG2, -LOG2))  # D: log 4, G: log ½
    assert np.allclose(L["nonsaturating"].at_zero, (2 * LOG2, LOG2))
    assert L["hinge"].at_zero == (2.0, 0.0) and L["wgan-gp"].at_zero == (0.0, 0.0)
    assert [L[n].probability for n in gan_config.LOSSES] == [True, True, False, False]


def test_minimax_losses_against_hand_computation():
    real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
    want_d = -np.mean(np.log(sigmoid(real))) - np.mean(np.log(1 - sigmoid(fake)))
    for name, want_g in [
        ("saturating", np.mean(np.log(1 - sigmoid(fake)))),  # G minimises E log(1 - D(G(z)))
        ("nonsaturating", -np.mean(np.log(sigmoid(fake)))),
    ]:
        d, g = L[name].fn(real, fake)
        np.testing.assert_allclose((d, g), (want_d, want_g), rtol=1e-6, err_msg=name)


def test_hinge_at_known_values():
    real, fake = jnp.array([2.0, 0.5]), jnp.array([-2.0, 0.5])
    d, g = L["hinge"].fn(real, fake)
    # D: mean(relu(1-2), relu(1-0.5)) = 0.25, mean(relu(1-2), relu(1+0.5)) = 0.75; G: -mean(-2, 0.5)
    np.testing.assert_allclose((d, g), (1.0, 0.75), rtol=1e-6)


def test_wgan_is_a_difference_of_means():
    d, g = L["wgan-gp"].fn(jnp.array([1.0, 3.0]), jnp.array([0.0, -2.0]))
    np.testing.assert_allclose((d, g), (-1.0 - 2.0, 1.0), rtol=1e-6)  # E fake - E real, -E fake


def test_minimax_losses_stay_finite_where_log_of_sigmoid_would_not():
    big = jnp.array([200.0])
    d, g = L["nonsaturating"].fn(-big, big)
    assert np.isclose(d, 400.0) and np.isclose(L["nonsaturating"].fn(big, -big)[1], 200.0)
    grad = jax.grad(lambda t: L["saturating"].fn(t, t)[1])(-big)  # the saturating G loss: vanishing gradient
    assert abs(float(grad[0])) < 1e-30


@pytest.mark.parametrize("name", gan_config.LOSSES)
def test_g_loss_rows_average_to_g_loss(name):
    real, fake = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.5, -0.4, 0.1])
    rows = gan_losses.g_loss_rows(L[name], fake)
    assert rows.shape == (3,)
    np.testing.assert_allclose(rows.mean(), L[name].fn(real, fake)[1], rtol=1e-6)


# ---------------------------------------------------------------- the gradient penalty


def test_gradient_penalty_on_a_linear_critic():
    """D(x) = w.x: grad = w at every x^, so the penalty is (||w|| - 1)^2 whatever the interpolates."""
    w = jnp.array([3.0, 4.0])  # ||w|| = 5
    real, fake = jax.random.normal(jax.random.key(0), (2, 6, 2))
    penalty = jax.jit(lambda w: gan_losses.gradient_penalty(lambda x: x @ w, real, fake, jax.random.key(1)))
    np.testing.assert_allclose(penalty(w), (5.0 - 1.0) ** 2, rtol=1e-5)
    assert float(penalty(jnp.array([0.6, 0.8]))) < 1e-10  # a unit-norm critic pays nothing
    # its gradient in w (what the critic's update follows): 2 (||w|| - 1) w / ||w||
    np.testing.assert_allclose(jax.grad(penalty)(w), 2 * 4.0 * np.array([3.0, 4.0]) / 5.0, rtol=1e-5)


# ---------------------------------------------------------------- config: gp is wgan-gp's


def test_gp_with_another_loss_is_refused_in_one_line():
    with pytest.raises(UserError, match="gp .*loss=wgan-gp's.*: drop --set gp, or add --set loss=wgan-gp"):
        tasks.make_config("gan", {"loss": "hinge", "gp": 5.0})
    with pytest.raises(UserError, match="gp must be >= 0"):
        tasks.make_config("gan", {"loss": "wgan-gp", "gp": -1.0})
    assert tasks.make_config("gan", {"loss": "hinge", "gp": 0.0}).gp == 0.0  # no penalty: nothing to refuse


def test_gp_is_resolved_and_recorded_for_wgan_gp_only():
    ds = data.load("toy:ring8")
    wgan = tasks.resolve(tasks.make_config("gan", {"loss": "wgan-gp"}), ds)
    assert wgan.gp == 10.0 and configs.record(wgan, ds.spec)["gp"] == 10.0
    plain = tasks.resolve(tasks.make_config("gan", {}), ds)
    assert "gp" not in configs.record(plain, ds.spec)  # the other losses' records are as before


# ---------------------------------------------------------------- one tiny step per loss


@pytest.mark.parametrize("name", gan_config.LOSSES)
def test_one_step_per_loss_is_finite(name):
    cfg = tasks.make_config("gan", {**GANConfig.TINY, "steps": 10, "r1": 0.0, "loss": name})
    ds = data.load("toy:ring8")
    task = tasks.build(cfg, ds)
    init_key, data_key, loop_key = runtime.split_keys(0)
    state = jax.jit(task.init)(init_key)
    batch = batches.batch_at(jax.device_put(ds.train), data_key, 0, task.examples_per_step)
    _, m = jax.jit(task.step)(state, batch, jax.random.fold_in(loop_key, 0))
    assert all(np.isfinite(float(v)) for v in m.values()), m
    reading = "d" if L[name].probability else "critic"
    assert set(task.headline) <= set(m) and f"{reading}_real" in m and f"{reading}_fake" in m
    assert ("gp_penalty" in m) == (name == "wgan-gp") and ("d_real" in m) == (reading == "d")
    if reading == "d":
        assert 0 < float(m["d_real"]) < 1


def test_a_critic_is_evaluated_by_its_scores():
    cfg = tasks.make_config("gan", {**GANConfig.TINY, "steps": 10, "loss": "hinge"})
    task = tasks.build(cfg, data.load("toy:ring8"))
    params = task.init(jax.random.key(0)).params
    scores = task.evaluate(params, data.load("toy:ring8").test, jax.random.key(1))
    assert {"critic_real_mean", "critic_fake_mean", "modes_covered"} <= set(scores)
    assert not {"d_real_mean", "d_fake_mean"} & set(scores)
