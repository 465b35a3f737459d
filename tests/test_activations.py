"""Every activation under jit and grad; stable softmax; the linear collapse; registry errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import activations
from jaxgen.errors import UserError

X = jnp.linspace(-6.0, 6.0, 101)


@pytest.mark.parametrize("name", activations.NAMES)
def test_jit_and_grad_match_eager_and_finite_differences(name):
    fn = activations.get(name)
    np.testing.assert_allclose(jax.jit(fn)(X), fn(X), rtol=1e-6, atol=1e-6)
    grad = jax.jit(jax.vmap(jax.grad(lambda x: fn(x))))
    xs = jnp.array([-2.3, -0.7, 0.4, 1.9])  # away from the kinks of relu/leaky_relu
    eps = 1e-3
    fd = (fn(xs + eps) - fn(xs - eps)) / (2 * eps)
    np.testing.assert_allclose(grad(xs), fd, rtol=2e-3, atol=2e-3)
    assert np.isfinite(np.asarray(grad(X))).all()


def test_known_values():
    x = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(activations.get("relu")(x), [0, 0, 3])
    np.testing.assert_allclose(activations.get("leaky_relu")(x), [-0.02, 0, 3], rtol=1e-6)
    np.testing.assert_allclose(activations.get("leaky_relu:0.2")(x), [-0.4, 0, 3], rtol=1e-6)
    np.testing.assert_allclose(activations.get("sigmoid")(jnp.zeros(1)), [0.5])
    np.testing.assert_allclose(activations.get("linear")(x), x)
    np.testing.assert_allclose(activations.get("elu")(x), [np.expm1(-2.0), 0, 3], rtol=1e-6)
    np.testing.assert_allclose(activations.get("softplus")(jnp.zeros(1)), [np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(activations.get("silu")(x), x * jax.nn.sigmoid(x), rtol=1e-6)


def test_sigmoid_derivative_at_most_a_quarter():
    d = jax.vmap(jax.grad(activations.get("sigmoid")))(X)
    assert float(d.max()) == pytest.approx(0.25, abs=1e-6)


def test_softmax_is_stable_at_extreme_logits():
    logits = jnp.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 1000.0]])
    p = jax.jit(activations.softmax)(logits)
    lp = jax.jit(activations.log_softmax)(logits)
    assert np.isfinite(np.asarray(p)).all() and np.isfinite(np.asarray(lp[:, :1])).all()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(lp[2], [-np.log(3.0)] * 3, rtol=1e-6)
    np.testing.assert_allclose(lp, jax.nn.log_softmax(logits), rtol=1e-6)
    g = jax.grad(lambda z: activations.log_softmax(z)[0, 0])(logits)
    assert np.isfinite(np.asarray(g)).all()


def test_a_stack_of_linear_layers_is_one_matrix():
    key = jax.random.key(0)
    ks = jax.random.split(key, 6)
    ws = [jax.random.normal(k, (8, 8)) / 3 for k in ks[:5]]
    x = jax.random.normal(ks[5], (4, 8))
    lin = activations.get("linear")
    h = x
    for w in ws:
        h = lin(h @ w)
    product = ws[0]
    for w in ws[1:]:
        product = product @ w
    np.testing.assert_allclose(h, x @ product, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad", ["relu6", "leaky_relu:abc", "relu:0.1", "leaky_relu:2", ""])
def test_bad_names_raise_with_the_valid_list(bad):
    with pytest.raises(UserError) as err:
        activations.get(bad)
    assert "\n" not in str(err.value)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UserError, match="sigmoid, tanh, relu, leaky_relu"):
        activations.validate("swishy")


def test_default_init_pairs():
    assert activations.default_init("relu") == "he_normal"
    assert activations.default_init("sigmoid") == "glorot_uniform"
    assert activations.default_init("leaky_relu:0.3") == "he_normal"
