"""The walkthrough's own measurements and figures (the ones no task draws): the 2-2-2 chain rule against
jax.grad, linear against ReLU on two moons, a coin and a Gaussian against samples, digits as points."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import backprop, data, metrics, runs, runtime
from jaxgen.plots import toy
from jaxgen.plots.common import plt, save, show_image

PARAM_NAMES = ["w1", "w2", "w3", "w4", "b1 (h1)", "b1 (h2)", "w5", "w6", "w7", "w8", "b2 (o1)", "b2 (o2)"]


def _flat(layers) -> np.ndarray:
    """12 numbers in the lecture's order: w1..w4 (w1 = i1->h1, w2 = i2->h1, w3 = i1->h2, w4 = i2->h2),
    the hidden biases, w5..w8, the output biases."""
    (W1, b1), (W2, b2) = layers
    return np.array(
        [W1[0, 0], W1[1, 0], W1[0, 1], W1[1, 1], *b1, W2[0, 0], W2[1, 0], W2[0, 1], W2[1, 1], *b2]
    )


def _jax_error(layers, x, target):
    h = x
    for W, b in layers:
        h = jax.nn.sigmoid(h @ W + b)
    return 0.5 * jnp.sum((target - h) ** 2)


def _autodiff_run(layers, x, target, lr: float, iters: int) -> tuple[Any, np.ndarray]:
    """jax.grad's gradients at the start, and E_total along `iters` SGD steps (float64, one lax.scan)."""
    with jax.enable_x64(True):
        params = jax.tree.map(jnp.asarray, layers)
        grad_fn = jax.value_and_grad(_jax_error)
        grads = jax.tree.map(np.asarray, grad_fn(params, jnp.asarray(x), jnp.asarray(target))[1])

        def body(p, _):
            e, g = grad_fn(p, jnp.asarray(x), jnp.asarray(target))
            return jax.tree.map(lambda a, b: a - lr * b, p, g), e

        curve = np.asarray(jax.jit(lambda p: jax.lax.scan(body, p, None, length=iters))(params)[1])
    return grads, curve


def backprop_against_autodiff(iters: int, path: Path) -> dict[str, Any]:
    """SGD on the 2-2-2 example by the hand-written chain rule and by jax.grad (float64 both): the first
    step's gradients side by side, E_total over `iters` steps; the figure of both."""
    layers, x, target, lr = backprop.worked_example()
    hand_E, hand_layers = [], layers
    _, E0, hand_grads = backprop.sgd_step(layers, x, target, lr)
    for _ in range(iters):
        hand_layers, E, _ = backprop.sgd_step(hand_layers, x, target, lr)
        hand_E.append(float(E))
    auto_grads, auto_E = _autodiff_run(layers, x, target, lr, iters)
    hand_g, auto_g = _flat(hand_grads), _flat(auto_grads)
    first = backprop.sgd_step(layers, x, target, lr)[0]
    numbers = {
        "iters": iters,
        "lr": lr,
        "E_total_first": float(E0),
        "dE_dw5": float(hand_g[6]),
        "dE_dw1": float(hand_g[0]),
        "w5_after_first_step": float(first[1][0][0, 0]),
        "w1_after_first_step": float(first[0][0][0, 0]),
        "grad_max_abs_diff_vs_jax_grad": float(np.max(np.abs(hand_g - auto_g))),
        "E_curve_max_abs_diff_vs_jax_grad": float(np.max(np.abs(np.array(hand_E) - auto_E))),
        "E_total_last": hand_E[-1],
        "hand_grads": hand_g.tolist(),
        "autodiff_grads": auto_g.tolist(),
    }
    _backprop_figure(hand_E, auto_E, hand_g, auto_g, numbers, path)
    return numbers


def _backprop_figure(hand_E, auto_E, hand_g, auto_g, numbers: dict[str, Any], path: Path) -> None:
    """Left: both E_total curves; right: the 12 first-step gradients, hand against jax.grad."""
    iters = numbers["iters"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), layout="constrained")
    ax = axes[0]
    steps = np.arange(1, iters + 1)
    ax.loglog(steps, hand_E, color="C0", lw=3, alpha=0.5, label="hand-written chain rule (backprop.py)")
    ax.loglog(steps, auto_E, color="k", ls="--", lw=1, label="jax.grad")
    ax.set_xlabel("gradient-descent step (lr 0.5)")
    ax.set_ylabel("E_total = ½ Σ (target − out)²")
    ax.legend(fontsize=8)
    ax.set_title(
        f"E_total over {iters:,} steps: {numbers['E_total_first']:.6f} → {numbers['E_total_last']:.3g}\n"
        f"largest |hand − jax.grad| along the curve: {numbers['E_curve_max_abs_diff_vs_jax_grad']:.1e}",
        fontsize=9,
    )
    ax = axes[1]
    pos = np.arange(len(PARAM_NAMES))
    ax.bar(pos - 0.2, hand_g, 0.4, color="C0", label="hand-written chain rule")
    ax.bar(pos + 0.2, auto_g, 0.4, color="0.3", label="jax.grad")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(pos, PARAM_NAMES, rotation=45, fontsize=8)
    ax.set_ylabel("∂E_total/∂parameter at the first step")
    ax.legend(fontsize=8)
    ax.set_title(
        "the 12 gradients of the first step; largest difference "
        f"{numbers['grad_max_abs_diff_vs_jax_grad']:.1e}"
        f"\n∂E/∂w5 = {numbers['dE_dw5']:.9f}, ∂E/∂w1 = {numbers['dE_dw1']:.9f} (float64)",
        fontsize=9,
    )
    fig.suptitle(
        "backpropagation on the 2-2-2 sigmoid network (Mazur's example), jaxgen backprop", fontsize=10
    )
    save(fig, Path(path))


def _composed_linear(task, params, test: dict[str, Any]) -> dict[str, Any]:
    """A linear MLP's layers multiplied out into one affine map (float64), checked against its logits."""
    c = task.cfg
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)["params"]
    names = [f"hidden_{i}" for i in range(len(c.hidden))] + ["out"]
    w, b = p[names[0]]["kernel"], p[names[0]]["bias"]
    for n in names[1:]:
        w, b = w @ p[n]["kernel"], b @ p[n]["kernel"] + p[n]["bias"]
    x = np.asarray(test["image"], np.float64)
    logits = task.logits(params, test["image"])
    return {
        "composed_map_shape": list(w.shape),
        "composed_logits_max_rel_diff": float(np.max(np.abs(x @ w + b - logits)) / np.max(np.abs(logits))),
    }


def linear_vs_relu(linear_dir: Path, relu_dir: Path, path: Path) -> dict[str, Any]:
    """p(y | x) of the linear and the ReLU MLP on the same toy side by side; the linear net's layers
    multiplied out into one affine map, checked against its own logits."""

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    out: dict[str, Any] = {}
    for ax, run_dir in zip(axes, (linear_dir, relu_dir), strict=True):
        task, state, step, _, ds, *_ = runs.restore_for_eval(run_dir)
        extent = toy.extent_of(np.asarray(ds.test["image"]), 1.0)
        r = toy.probability_panel(ax, task, state.params, ds.test, extent)
        c = task.cfg
        ax.set_title(
            f"{c.activation}: hidden {','.join(map(str, c.hidden))}, {step} steps; "
            f"test accuracy {r['accuracy']:.4f}",
            fontsize=9,
        )
        if c.activation == "linear":
            out.update(_composed_linear(task, state.params, ds.test))
    fig.suptitle(
        f"why a network needs a non-linearity: the same MLP on {ds.spec}, p(y | x) and decision boundary\n"
        f"without one its {len(c.hidden) + 1} layers are one affine map (relative difference of the "
        "multiplied-out "
        f"map's logits: {out['composed_logits_max_rel_diff']:.1e}), so the boundary is a straight line",
        fontsize=10,
    )
    save(fig, Path(path))
    return out


GAUSS_MU, GAUSS_SIGMA = 4.0, 0.5  # the toy:gauss1d density of the GAN section
GAUSS_BINS = 60


def _gauss_pdf(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def coin_and_gaussian(key: jax.Array, n_flips: int, n_gauss: int, path: Path) -> dict[str, Any]:
    """A fair coin, P(X=1) = ½, against the running frequency of flips; N(4, 0.5²)'s pdf against a
    histogram of samples."""
    coin_key, gauss_key = jax.random.split(key)
    flips = np.asarray(jax.random.bernoulli(coin_key, 0.5, (n_flips,)), np.float64)
    running = np.cumsum(flips) / np.arange(1, n_flips + 1)
    checkpoints = [k for k in (10, 100, 1000, 10_000, 100_000, 1_000_000) if k <= n_flips]
    mu, sigma = GAUSS_MU, GAUSS_SIGMA
    x = mu + sigma * np.asarray(jax.random.normal(gauss_key, (n_gauss,)), np.float64)
    hist, edges = np.histogram(x, bins=GAUSS_BINS, range=(mu - 4 * sigma, mu + 4 * sigma), density=True)
    hist *= np.mean((x >= edges[0]) & (x <= edges[-1]))  # density over all samples, not only those in range
    mids = 0.5 * (edges[1:] + edges[:-1])
    pdf = _gauss_pdf(mids, mu, sigma)
    numbers = {
        "coin": {
            "n": n_flips,
            "p1_true": 0.5,
            "p1_empirical": float(running[-1]),
            "standard_error": float(0.5 / np.sqrt(n_flips)),
            "running": {str(k): float(running[k - 1]) for k in checkpoints},
        },
        "gaussian": {
            "n": n_gauss,
            "mu": mu,
            "sigma": sigma,
            "sample_mean": float(x.mean()),
            "sample_std": float(x.std(ddof=1)),
            "hist_pdf_max_abs_diff": float(np.max(np.abs(hist - pdf))),
            "pdf_peak": float(pdf.max()),
            "bins": GAUSS_BINS,
        },
    }
    fig, axes = plt.subplots(1, 3, figsize=(16, 4), layout="constrained")
    _coin_panels(axes[0], axes[1], running)
    _gaussian_panel(axes[2], hist, edges, numbers["gaussian"])
    fig.suptitle(f"probability distributions against samples (jax.random, {_device()})", fontsize=10)
    save(fig, Path(path))
    return numbers


def _coin_panels(bars, curve, running: np.ndarray) -> None:
    """The coin's two bars against ½; its running frequency converging, within 2 standard errors."""
    n_flips = len(running)
    n = np.arange(1, n_flips + 1)
    bars.bar([0, 1], [1 - running[-1], running[-1]], 0.5, color="C0", label=f"frequency in {n_flips:,} flips")
    bars.hlines([0.5, 0.5], [-0.35, 0.65], [0.35, 1.35], colors="k", lw=2, label="P(X = x) = ½")
    bars.set_xticks([0, 1], ["X = 0 (tails)", "X = 1 (heads)"])
    bars.set_ylim(0, 0.8)
    bars.legend(fontsize=8, loc="upper center")
    bars.set_title(
        f"a discrete distribution: a fair coin\nP(X = 1) = ½; measured {running[-1]:.4f}", fontsize=9
    )
    se = 0.5 / np.sqrt(n)
    curve.fill_between(n, 0.5 - 2 * se, 0.5 + 2 * se, color="0.85", label="½ ± 2 standard errors")
    curve.semilogx(n, running, color="C0", lw=1, label="running frequency of X = 1")
    curve.axhline(0.5, color="k", lw=1)
    curve.set_ylim(0.2, 0.8)
    curve.set_xlabel("flips")
    curve.legend(fontsize=8)
    curve.set_title("the frequency converges to the probability (law of large numbers)", fontsize=9)


def _gaussian_panel(ax, hist: np.ndarray, edges: np.ndarray, g: dict[str, Any]) -> None:
    """The histogram of the Gaussian samples under the pdf."""
    mu, sigma = g["mu"], g["sigma"]
    mids = 0.5 * (edges[1:] + edges[:-1])
    ax.bar(mids, hist, width=edges[1] - edges[0], color="0.75", label=f"histogram of {g['n']:,} samples")
    fine = np.linspace(edges[0], edges[-1], 400)
    ax.plot(fine, _gauss_pdf(fine, mu, sigma), color="C3", label=f"pdf of N({mu:g}, {sigma:g}²)")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title(
        f"a continuous distribution: a Gaussian pdf against samples\nmean {g['sample_mean']:.4f}, std "
        f"{g['sample_std']:.4f}; largest |histogram − pdf| {g['hist_pdf_max_abs_diff']:.3f} "
        f"(peak {g['pdf_peak']:.3f})",
        fontsize=9,
    )


def _device() -> str:
    return runtime.device_name()


def digits_as_points(ae2_dir: Path, spec: str, path: Path) -> dict[str, Any]:
    """Digits as points in 784 dimensions (5-NN digit accuracy there), and their 2-D views: PCA-2 of the
    pixels and the 2-D codes of the latent-2 autoencoder."""
    task, state, step, _, ds, *_ = runs.restore_for_eval(ae2_dir, spec)
    test = data.split(ds, "test")
    x, y = (
        np.asarray(test["image"], np.float32).reshape(len(test["label"]), -1) / 255.0,
        np.asarray(test["label"]),
    )
    train_x, train_y = task.train_images()
    pca = task.pca()
    views = {
        "pixels": (train_x, x),
        "pca2": (pca.encode(train_x), pca.encode(x)),
        "ae2": (task.encode(state.params, train_x), task.encode(state.params, x)),
    }
    knn = {k: metrics.knn_accuracy(a, train_y, b, y) for k, (a, b) in views.items()}
    numbers = {"test_data": spec, "n_test": int(len(x)), "n_train": int(len(train_x)), "knn5_accuracy": knn,
               "ae_step": int(step)}  # fmt: skip
    _digits_figure(x, y, {k: b for k, (_, b) in views.items()}, knn, spec, path)
    return numbers


def _digits_figure(x, y, test_views: dict[str, np.ndarray], knn: dict[str, float], spec: str, path: Path):
    """Top: three digits as images and as 784 values; bottom: the test digits in PCA-2 and in the 2-D
    codes."""
    from jaxgen.plots.autoencoder import DIGIT_COLORS

    fig = plt.figure(figsize=(16, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1.6])
    picks = [int(np.flatnonzero(y == d)[0]) for d in (0, 1, 7)]
    for i, k in enumerate(picks):
        ax = fig.add_subplot(grid[0, i])
        show_image(ax, x[k])  # a flat row drawn at its square side, in grey
        side = math.isqrt(x.shape[1])
        ax.set_title(f"a {y[k]}: {side} × {side} pixels", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[0, 3])
    for i, k in enumerate(picks):
        ax.plot(np.arange(x.shape[1]), x[k] + 1.2 * i, lw=0.6, color=DIGIT_COLORS[y[k]], label=f"the {y[k]}")
    ax.set_xlabel("pixel index (row-major)")
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"the same digits as points of [0, 1]^{x.shape[1]} (one value per axis)", fontsize=9)
    for j, (key, label) in enumerate(
        (("pca2", "PCA-2 of the pixels"), ("ae2", "the autoencoder's 2-D codes"))
    ):
        ax = fig.add_subplot(grid[1, 2 * j : 2 * j + 2])
        pts = test_views[key]
        for d in range(10):
            m = y == d
            ax.scatter(
                pts[m, 0], pts[m, 1], s=4, color=DIGIT_COLORS[d], label=str(d), linewidths=0, alpha=0.7
            )
        ax.legend(title="digit", markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
        ax.set_title(
            f"{label}: 5-NN digit accuracy {knn[key]:.3f} ({x.shape[1]}-D pixels: {knn['pixels']:.3f})",
            fontsize=9,
        )
    fig.suptitle(
        f"data as points: {len(x):,} test digits ({spec}) in {x.shape[1]} dimensions and two 2-D views"
        f" ({_device()})",
        fontsize=10,
    )
    save(fig, Path(path))
