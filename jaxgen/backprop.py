"""Hand-written backpropagation for dense sigmoid nets: the chain rule step by step, in numpy, no autodiff.

This is the reference the JAX code is checked against, so it deliberately imports nothing from jax.
Layout: `layers` is a list of `(W, b)` with W of shape (in, out) and b of shape (out,), z = x @ W + b, and
every layer (the output layer too) applies the sigmoid. Loss: E = ½ Σ (target − out)², summed over outputs
and over the examples of a batch. x is (in,) for one example or (B, in) for a batch.
"""

from __future__ import annotations

import types

import numpy as np

from jaxgen.errors import UserError

Layer = tuple[np.ndarray, np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function σ(z) = 1 / (1 + e^(−z)), keeping z's float dtype."""
    z = np.asarray(z)
    # exp(−|z|) never overflows, so large |z| saturates cleanly to 0 or 1 without warnings;
    # both branches are the same function rewritten so the exponent is never positive.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _dtype(layers: list[Layer]) -> np.dtype:
    """The float dtype the computation runs in: that of the parameters (at least float32)."""
    if not layers:
        raise ValueError("layers is empty: need at least one (W, b) pair")
    return np.result_type(*(a for layer in layers for a in layer), np.float32)


def _check_layers(layers: list[Layer], x: np.ndarray) -> None:
    """Fail with a readable message instead of a numpy broadcasting error deep in the pass."""
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be 1-D (in,) or 2-D (batch, in), got shape {x.shape}")
    width = x.shape[-1]
    for i, (W, b) in enumerate(layers):
        if W.ndim != 2 or W.shape[0] != width or b.shape != (W.shape[1],):
            raise ValueError(
                f"layer {i}: expected W of shape ({width}, out) and b of shape (out,), "
                f"got W {W.shape} and b {b.shape}"
            )
        width = W.shape[1]


def forward(layers: list[Layer], x: np.ndarray) -> list[np.ndarray]:
    """The activations [x, a1, ..., a_L]: everything backward needs (σ' is recovered from a as a(1 − a))."""
    dtype = _dtype(layers)
    a = np.asarray(x, dtype=dtype)
    _check_layers(layers, a)
    activations = [a]
    for W, b in layers:
        a = sigmoid(a @ np.asarray(W, dtype=dtype) + np.asarray(b, dtype=dtype))
        activations.append(a)
    return activations


def _error(out: np.ndarray, target: np.ndarray) -> np.ndarray:
    """E = ½ Σ (target − out)² over every output of every example."""
    if target.shape != out.shape:
        # A (B,) target against a (B, 1) output would broadcast to (B, B) and give a silently wrong loss.
        raise ValueError(f"target has shape {target.shape}, but the network output has shape {out.shape}")
    return 0.5 * np.sum((target - out) ** 2)


def loss(layers: list[Layer], x: np.ndarray, target: np.ndarray) -> np.floating:
    """Squared error E = ½ Σ (target − out)², summed over outputs and over the batch."""
    out = forward(layers, x)[-1]
    return _error(out, np.asarray(target, dtype=out.dtype))


def backward(layers: list[Layer], activations: list[np.ndarray], target: np.ndarray) -> list[Layer]:
    """Gradients [(dW_1, db_1), ..., (dW_L, db_L)] of E by the chain rule, from forward's activations."""
    if len(activations) != len(layers) + 1:
        raise ValueError(f"need {len(layers) + 1} activations (x plus one per layer), got {len(activations)}")
    dtype = activations[-1].dtype
    # A single example is a batch of one: promoting to 2-D makes a_{l-1}ᵀ δ_l the outer product and
    # Σ_batch δ_l a no-op, so the gradients come out with exactly W's and b's shapes either way.
    acts = [np.atleast_2d(a) for a in activations]
    out = acts[-1]
    target = np.atleast_2d(np.asarray(target, dtype=dtype))
    if target.shape != out.shape:
        raise ValueError(f"target has shape {target.shape}, but the network output has shape {out.shape}")

    # Output layer: δ_L = ∂E/∂z_L = ∂E/∂out · ∂out/∂z_L = (out − target) · out(1 − out).
    delta = (out - target) * out * (1 - out)
    grads: list[Layer] = []
    for l in range(len(layers), 0, -1):  # noqa: E741 (l is the layer index of the formulas)
        a_prev = acts[l - 1]
        # z_l = a_{l-1} W_l + b_l, so ∂z_l/∂W_l brings a_{l-1} and each example adds its own share.
        grads.append((a_prev.T @ delta, delta.sum(axis=0)))
        if l > 1:
            # Each hidden unit feeds every unit of the next layer: its error is the sum δ_l W_lᵀ over
            # those paths, times its own σ' = a(1 − a).
            W = np.asarray(layers[l - 1][0], dtype=dtype)
            delta = (delta @ W.T) * a_prev * (1 - a_prev)
    grads.reverse()
    return grads


def sgd_step(
    layers: list[Layer], x: np.ndarray, target: np.ndarray, lr: float
) -> tuple[list[Layer], np.floating, list[Layer]]:
    """One gradient-descent step: (new layers, loss before the step, gradients); inputs are not mutated."""
    activations = forward(layers, x)
    out = activations[-1]
    E = _error(out, np.asarray(target, dtype=out.dtype))
    grads = backward(layers, activations, target)
    # lr is cast to the parameters' dtype so a float64 lr cannot silently promote float32 weights.
    step = np.asarray(lr, dtype=out.dtype)
    new_layers = [(W - step * dW, b - step * db) for (W, b), (dW, db) in zip(layers, grads, strict=True)]
    return new_layers, E, grads


def worked_example() -> tuple[list[Layer], np.ndarray, np.ndarray, float]:
    """Matt Mazur's 2-2-2 example ("A Step by Step Backpropagation Example"): (layers, x, target, lr)."""
    w1, w2, w3, w4 = 0.15, 0.20, 0.25, 0.30  # input → hidden
    w5, w6, w7, w8 = 0.40, 0.45, 0.50, 0.55  # hidden → output
    b1, b2 = 0.35, 0.60  # Mazur shares one bias per layer; here each unit starts from that value
    # Column j of W holds the weights into unit j: h1 = σ(w1·i1 + w2·i2 + b1), h2 = σ(w3·i1 + w4·i2 + b1).
    W1 = np.array([[w1, w3], [w2, w4]], dtype=np.float64)
    W2 = np.array([[w5, w7], [w6, w8]], dtype=np.float64)
    layers = [(W1, np.array([b1, b1])), (W2, np.array([b2, b2]))]
    x = np.array([0.05, 0.10])
    target = np.array([0.01, 0.99])
    return layers, x, target, 0.5


def _train(
    layers: list[Layer], x: np.ndarray, target: np.ndarray, lr: float, iters: int, update_biases: bool
) -> np.floating:
    """E_total as the last of `iters` steps sees it, optionally holding the biases fixed as Mazur does."""
    # Like a training log (and Mazur's figure), report the loss of the last step's forward pass, i.e. the
    # error after iters − 1 updates: that is the convention that reproduces his 0.0000351085.
    E = np.nan
    for _ in range(iters):
        new_layers, E, _ = sgd_step(layers, x, target, lr)
        if update_biases:
            layers = new_layers
        else:
            layers = [(W, b) for (W, _), (_, b) in zip(new_layers, layers, strict=True)]
    return E


def _check_equal(name: str, by_hand: float, general: float) -> None:
    """The per-factor display must agree with backward(); a mismatch is a bug, so fail even under -O."""
    if not np.isclose(by_hand, general, rtol=1e-12, atol=0.0):
        raise AssertionError(f"{name}: chain-rule factors give {by_hand!r} but backward() gives {general!r}")


def walkthrough(iters: int = 10000) -> str:
    """The worked example as text: forward pass, chain rule for w5 and w1, new weights, later error."""
    if isinstance(iters, bool) or not isinstance(iters, int | np.integer) or iters <= 0:
        raise UserError(f"--iters must be a positive integer, got {iters!r}")
    iters = int(iters)

    layers, x, target, lr = worked_example()
    (W1, b1), (W2, b2) = layers
    i1, i2 = x
    _, (h1, h2), (o1, o2) = forward(layers, x)
    new_layers, E_total, grads = sgd_step(layers, x, target, lr)
    (dW1, _), (dW2, _) = grads
    E_o1, E_o2 = 0.5 * (target - np.array([o1, o2])) ** 2

    # w5 joins h1 to o1: ∂E/∂w5 = ∂E/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5.
    dE_do1 = o1 - target[0]
    do1_dnet = o1 * (1 - o1)
    dnet_dw5 = h1
    dE_dw5 = dE_do1 * do1_dnet * dnet_dw5
    _check_equal("dE/dw5", dE_dw5, dW2[0, 0])

    # w1 joins i1 to h1, and h1 reaches E through both outputs, so ∂E/∂out_h1 sums over o1 and o2.
    delta_o1 = dE_do1 * do1_dnet
    delta_o2 = (o2 - target[1]) * o2 * (1 - o2)
    dEo1_dh1 = delta_o1 * W2[0, 0]  # w5
    dEo2_dh1 = delta_o2 * W2[0, 1]  # w7
    dE_dh1 = dEo1_dh1 + dEo2_dh1
    dh1_dnet = h1 * (1 - h1)
    dnet_dw1 = i1
    dE_dw1 = dE_dh1 * dh1_dnet * dnet_dw1
    _check_equal("dE/dw1", dE_dw1, dW1[0, 0])

    (nW1, nb1), (nW2, nb2) = new_layers
    new_w = [nW1[0, 0], nW1[1, 0], nW1[0, 1], nW1[1, 1], nW2[0, 0], nW2[1, 0], nW2[0, 1], nW2[1, 1]]

    E_ours = _train(layers, x, target, lr, iters, update_biases=True)
    E_frozen = _train(layers, x, target, lr, iters, update_biases=False)

    return _render(types.SimpleNamespace(**locals()), iters)


def _render(d: types.SimpleNamespace, iters: int) -> str:
    """walkthrough's numbers (d: its local values) as the text it prints."""

    def f(v) -> str:
        return f"{float(v):.9f}"

    lines = [
        "Backpropagation, step by step: Matt Mazur's 2-2-2 sigmoid network",
        f"  inputs i1 = {d.i1}, i2 = {d.i2}; targets {d.target[0]}, {d.target[1]}; learning rate α = {d.lr}",
        f"  w1..w4 = {d.W1[0, 0]}, {d.W1[1, 0]}, {d.W1[0, 1]}, {d.W1[1, 1]}; "
        f"w5..w8 = {d.W2[0, 0]}, {d.W2[1, 0]}, {d.W2[0, 1]}, {d.W2[1, 1]}; b1 = {d.b1[0]}, b2 = {d.b2[0]}",
        "",
        "Forward pass",
        f"  net_h1 = w1·i1 + w2·i2 + b1 = {f(d.i1 * d.W1[0, 0] + d.i2 * d.W1[1, 0] + d.b1[0])}",
        f"  out_h1 = σ(net_h1) = {f(d.h1)}",
        f"  out_h2 = σ(net_h2) = {f(d.h2)}",
        f"  net_o1 = w5·out_h1 + w6·out_h2 + b2 = {f(d.h1 * d.W2[0, 0] + d.h2 * d.W2[1, 0] + d.b2[0])}",
        f"  out_o1 = σ(net_o1) = {f(d.o1)}",
        f"  out_o2 = σ(net_o2) = {f(d.o2)}",
        f"  E_o1 = ½(target_o1 − out_o1)² = {f(d.E_o1)}",
        f"  E_o2 = ½(target_o2 − out_o2)² = {f(d.E_o2)}",
        f"  E_total = E_o1 + E_o2 = {f(d.E_total)}",
        "",
        "Output layer: ∂E_total/∂w5 = ∂E_total/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5",
        f"  ∂E_total/∂out_o1 = out_o1 − target_o1 = {f(d.dE_do1)}",
        f"  ∂out_o1/∂net_o1 = out_o1(1 − out_o1) = {f(d.do1_dnet)}",
        f"  ∂net_o1/∂w5 = out_h1 = {f(d.dnet_dw5)}",
        f"  ∂E_total/∂w5 = {f(d.dE_dw5)}   (equals backward()'s dW2[0, 0])",
        "",
        "Hidden layer: ∂E_total/∂w1 = ∂E_total/∂out_h1 · ∂out_h1/∂net_h1 · ∂net_h1/∂w1",
        f"  ∂E_o1/∂out_h1 = δ_o1 · w5 = {f(d.dEo1_dh1)}",
        f"  ∂E_o2/∂out_h1 = δ_o2 · w7 = {f(d.dEo2_dh1)}",
        f"  ∂E_total/∂out_h1 = ∂E_o1/∂out_h1 + ∂E_o2/∂out_h1 = {f(d.dE_dh1)}",
        f"  ∂out_h1/∂net_h1 = out_h1(1 − out_h1) = {f(d.dh1_dnet)}",
        f"  ∂net_h1/∂w1 = i1 = {f(d.dnet_dw1)}",
        f"  ∂E_total/∂w1 = {f(d.dE_dw1)}   (equals backward()'s dW1[0, 0])",
        "",
        "Weights after the first step (w ← w − α·∂E_total/∂w)",
        *(f"  w{k} = {f(w)}" for k, w in enumerate(d.new_w, start=1)),
        f"  biases are parameters here and are updated too: b1 → {f(d.nb1[0])}, {f(d.nb1[1])}; "
        f"b2 → {f(d.nb2[0])}, {f(d.nb2[1])}",
        "  (Mazur keeps the biases fixed; that does not change the weight updates of this first step)",
        "",
        f"After {iters} iteration{'s' if iters != 1 else ''} "
        f"(E_total from the forward pass of step {iters}, as Mazur reports it)",
        f"  E_total = {float(d.E_ours):.10f}   (biases updated, as sgd_step does)",
        f"  E_total = {float(d.E_frozen):.10f}   (biases held fixed, as Mazur does; "
        "he reports 0.0000351085 after 10000)",
    ]
    return "\n".join(lines)
