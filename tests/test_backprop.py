"""The hand-written chain rule: Mazur's numbers, jax.grad, finite differences, dtypes, no mutation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import backprop as bp
from jaxgen.errors import UserError

# Mazur, "A Step by Step Backpropagation Example": the weights after the first update.
PUBLISHED_W = {
    "w1": 0.149780716, "w2": 0.19956143, "w3": 0.24975114, "w4": 0.29950229,
    "w5": 0.35891648, "w6": 0.408666186, "w7": 0.511301270, "w8": 0.561370121,
}  # fmt: skip


def random_net(sizes: list[int], batch: int | None, seed: int, dtype=np.float64):
    """Random (layers, x, target) for a dense sigmoid net with the given layer sizes."""
    rng = np.random.default_rng(seed)
    layers = [
        (rng.normal(size=(n_in, n_out)).astype(dtype), rng.normal(size=n_out).astype(dtype))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    lead = () if batch is None else (batch,)
    x = rng.normal(size=lead + (sizes[0],)).astype(dtype)
    target = rng.uniform(size=lead + (sizes[-1],)).astype(dtype)
    return layers, x, target


@pytest.fixture
def x64():
    """float64 in jax for one test only: enable_x64 is a context manager, so other test files keep float32."""
    before = jax.config.jax_enable_x64
    with jax.enable_x64(True):
        yield
    assert jax.config.jax_enable_x64 == before


def jax_loss(params, x, target):
    """The same E = ½ Σ (target − out)² written in jax, for jax.grad to differentiate."""
    a = x
    for W, b in params:
        z = a @ W
        # conftest forbids implicit rank promotion, so the bias is given the batch axis explicitly.
        a = jax.nn.sigmoid(z + b.reshape((1,) * (z.ndim - 1) + b.shape))
    return 0.5 * jnp.sum((target - a) ** 2)


# One compiled call per shape: op-by-op jax.grad on deep nets costs seconds per test on CPU.
jax_value_and_grad = jax.jit(jax.value_and_grad(jax_loss))


# --- Mazur's worked example -----------------------------------------------------------------------


def test_worked_example_first_step_matches_published_numbers():
    layers, x, target, lr = bp.worked_example()
    new_layers, E, _ = bp.sgd_step(layers, x, target, lr)
    assert E == pytest.approx(0.298371109, abs=1e-7)
    (W1, _), (W2, _) = new_layers
    got = {
        "w1": W1[0, 0], "w2": W1[1, 0], "w3": W1[0, 1], "w4": W1[1, 1],
        "w5": W2[0, 0], "w6": W2[1, 0], "w7": W2[0, 1], "w8": W2[1, 1],
    }  # fmt: skip
    for name, published in PUBLISHED_W.items():
        assert got[name] == pytest.approx(published, abs=1e-7), name


def test_worked_example_forward_values():
    layers, x, target, _ = bp.worked_example()
    _, (h1, h2), (o1, o2) = bp.forward(layers, x)
    assert (h1, h2) == pytest.approx((0.593269992, 0.596884378), abs=1e-9)
    assert (o1, o2) == pytest.approx((0.75136507, 0.772928465), abs=1e-9)
    assert bp.loss(layers, x, target) == pytest.approx(0.298371109, abs=1e-9)


@pytest.fixture(scope="module")
def walkthrough_text() -> str:
    """The default walkthrough (10000 iterations, about a second), computed once for every check."""
    return bp.walkthrough()


@pytest.mark.parametrize(
    "number",
    [
        "0.377500000",  # net_h1
        "0.593269992",  # out_h1
        "0.751365070",  # out_o1
        "0.298371109",  # E_total
        "0.741365070",  # ∂E/∂out_o1
        "0.186815602",  # ∂out_o1/∂net_o1
        "0.082167041",  # ∂E/∂w5
        "0.036350306",  # ∂E/∂out_h1
        "0.241300709",  # ∂out_h1/∂net_h1
        "0.000438568",  # ∂E/∂w1
        "0.149780716",  # w1 after one step
        "0.358916480",  # w5 after one step
        "0.561370121",  # w8 after one step
        "0.0000351085",  # Mazur's error after 10000 iterations, biases fixed
    ],
)
def test_walkthrough_shows_published_numbers(walkthrough_text, number):
    assert number in walkthrough_text


def test_walkthrough_says_biases_are_updated(walkthrough_text):
    assert "After 10000 iterations" in walkthrough_text
    assert "biases updated" in walkthrough_text and "biases held fixed" in walkthrough_text


def test_walkthrough_short_run():
    text = bp.walkthrough(iters=np.int64(3))
    assert "After 3 iterations" in text and "0.298371109" in text


@pytest.mark.parametrize("iters", [0, -5, 2.5, "100", True, None])
def test_walkthrough_rejects_bad_iters(iters):
    with pytest.raises(UserError, match=r"^--iters must be a positive integer, got "):
        bp.walkthrough(iters)


# --- gradients: jax.grad and finite differences -----------------------------------------------


@pytest.mark.parametrize(
    "sizes", [[3, 2], [4, 6, 5, 3], [5, 7, 3, 8, 4, 6, 2]], ids=["depth1", "depth3", "depth6"]
)
@pytest.mark.parametrize("batch", [None, 7], ids=["single", "batch7"])
def test_backward_matches_jax_grad(x64, sizes, batch):
    layers, x, target = random_net(sizes, batch, seed=len(sizes) * 10 + (batch or 0))
    grads = bp.backward(layers, bp.forward(layers, x), target)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in layers]
    ref_loss, ref = jax_value_and_grad(params, jnp.asarray(x), jnp.asarray(target))
    assert bp.loss(layers, x, target) == pytest.approx(float(ref_loss), rel=1e-12)
    for (dW, db), (rW, rb), (W, b) in zip(grads, ref, layers, strict=True):
        assert rW.dtype == jnp.float64
        assert dW.shape == W.shape and db.shape == b.shape
        np.testing.assert_allclose(dW, np.asarray(rW), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(db, np.asarray(rb), rtol=1e-10, atol=1e-13)


def test_backward_matches_central_finite_differences():
    layers, x, target = random_net([4, 5, 3, 2], batch=6, seed=7)
    grads = bp.backward(layers, bp.forward(layers, x), target)
    eps = 1e-6
    for i, (W, b) in enumerate(layers):
        for which, param in ((0, W), (1, b)):
            numeric = np.zeros_like(param)
            for idx in np.ndindex(param.shape):
                shifted = []
                for sign in (+1, -1):
                    p = param.copy()
                    p[idx] += sign * eps
                    trial = list(layers)
                    trial[i] = (p, b) if which == 0 else (W, p)
                    shifted.append(bp.loss(trial, x, target))
                numeric[idx] = (shifted[0] - shifted[1]) / (2 * eps)
            np.testing.assert_allclose(grads[i][which], numeric, rtol=1e-6, atol=1e-9)


def test_single_example_equals_batch_of_one_and_batch_sums_examples():
    layers, x, target = random_net([3, 4, 2], batch=5, seed=3)
    batch_grads = bp.backward(layers, bp.forward(layers, x), target)
    total = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
    for xi, ti in zip(x, target, strict=True):
        single = bp.backward(layers, bp.forward(layers, xi), ti)
        one = bp.backward(layers, bp.forward(layers, xi[None]), ti[None])
        for (sW, sb), (oW, ob), (tW, tb) in zip(single, one, total, strict=True):
            np.testing.assert_array_equal(sW, oW)
            np.testing.assert_array_equal(sb, ob)
            tW += sW
            tb += sb
    for (gW, gb), (tW, tb) in zip(batch_grads, total, strict=True):
        np.testing.assert_allclose(gW, tW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(gb, tb, rtol=1e-12, atol=1e-15)


# --- sgd_step behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [None, 4])
def test_dtype_is_preserved(dtype, batch):
    layers, x, target = random_net([3, 5, 2], batch, seed=1, dtype=dtype)
    acts = bp.forward(layers, x)
    assert all(a.dtype == dtype for a in acts)
    assert bp.loss(layers, x, target).dtype == dtype
    # A numpy float64 learning rate must not promote float32 weights.
    new_layers, E, grads = bp.sgd_step(layers, x, target, np.float64(0.1))
    assert E.dtype == dtype
    for (W, b), (dW, db), (W0, b0) in zip(new_layers, grads, layers, strict=True):
        assert W.dtype == b.dtype == dW.dtype == db.dtype == dtype
        assert W.shape == W0.shape and b.shape == b0.shape


def test_sgd_step_does_not_mutate_inputs():
    layers, x, target = random_net([3, 4, 4, 2], batch=3, seed=2)
    saved = [(W.copy(), b.copy()) for W, b in layers], x.copy(), target.copy()
    layer_list = list(layers)
    new_layers, _, _ = bp.sgd_step(layers, x, target, 0.5)
    assert layers == layer_list  # same list, same array objects
    for (W, b), (W0, b0), (nW, nb) in zip(layers, saved[0], new_layers, strict=True):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
        assert nW is not W and nb is not b
    np.testing.assert_array_equal(x, saved[1])
    np.testing.assert_array_equal(target, saved[2])


def test_sgd_step_loss_is_before_the_update_and_update_is_w_minus_lr_grad():
    layers, x, target = random_net([2, 3, 2], batch=4, seed=4)
    new_layers, E, grads = bp.sgd_step(layers, x, target, 0.25)
    assert E == bp.loss(layers, x, target)
    for (W, b), (dW, db), (nW, nb) in zip(layers, grads, new_layers, strict=True):
        np.testing.assert_array_equal(nW, W - 0.25 * dW)
        np.testing.assert_array_equal(nb, b - 0.25 * db)


@pytest.mark.parametrize("sizes", [[2, 2, 2], [4, 8, 8, 8, 3]])
def test_loss_falls_over_100_steps(sizes):
    layers, x, target = random_net(sizes, batch=8, seed=5)
    losses = []
    for _ in range(100):
        layers, E, _ = bp.sgd_step(layers, x, target, 0.5)
        losses.append(E)
    losses.append(bp.loss(layers, x, target))
    # A small enough step is a descent step: the loss falls at every step, not just overall.
    assert np.all(np.diff(losses) < 0)
    assert losses[-1] < 0.8 * losses[0]


# --- bad shapes fail readably -----------------------------------------------------------------


def test_target_shape_mismatch_raises():
    layers, x, _ = random_net([3, 1], batch=4, seed=6)
    with pytest.raises(ValueError, match="target has shape"):
        bp.loss(layers, x, np.zeros(4))  # (4,) against (4, 1) would broadcast to (4, 4)
    with pytest.raises(ValueError, match="target has shape"):
        bp.sgd_step(layers, x, np.zeros(4), 0.1)


def test_layer_shape_mismatch_raises():
    layers, x, _ = random_net([3, 4, 2], batch=2, seed=6)
    with pytest.raises(ValueError, match="layer 1"):
        bp.forward([layers[0], (np.zeros((5, 2)), np.zeros(2))], x)


def test_module_does_not_use_jax():
    source = open(bp.__file__).read()
    assert "import jax" not in source and "from jax " not in source
