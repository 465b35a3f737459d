"""Figures on 2-D toy data: a classifier's p(y | x) over the plane with its decision boundary, and the
discriminative-versus-generative figure (p(y | x) beside the GAN's density, and both against distance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen.plots import _save, plt

GRID = 200  # heat-map resolution per axis


def _extent(x_NxD: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    lo, hi = x_NxD.min(0) - margin, x_NxD.max(0) + margin
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _grid(extent: tuple[float, float, float, float], n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
    xx, yy = np.meshgrid(gx, gy)
    return np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32), (xx, yy)


def _device() -> str:
    from jaxgen.train import device_name

    return device_name()


def probability_panel(ax, classifier, params, arrays: dict[str, Any], extent, points: int = 1500) -> dict:
    """p(y | x) on a grid: two classes as p(y=1 | x) (blue-red), more as the predicted class shaded by its
    probability; the decision boundary in black and test points on top. Returns the grid's numbers."""
    x, y = np.asarray(arrays["image"], np.float32), np.asarray(arrays["label"])
    grid, (xx, yy) = _grid(extent)
    p = classifier.probs(params, grid)
    c = p.shape[1]
    if c == 2:
        im = ax.imshow(
            p[:, 1].reshape(xx.shape), origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1,
            aspect="auto", alpha=0.6,
        )  # fmt: skip
        ax.contour(xx, yy, p[:, 1].reshape(xx.shape), levels=[0.5], colors="k", linewidths=1.5)
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="p(y = 1 | x)")
    else:
        cmap = plt.get_cmap("tab10" if c <= 10 else "tab20")
        rgba = np.array([cmap(i % cmap.N) for i in p.argmax(1)])
        rgba[:, 3] = (p.max(1) - 1 / c) / (1 - 1 / c)  # transparent at chance, opaque when certain
        ax.imshow(rgba.reshape(*xx.shape, 4), origin="lower", extent=extent, aspect="auto")
        ax.contour(xx, yy, p.argmax(1).reshape(xx.shape), levels=np.arange(c) + 0.5, colors="k", linewidths=1)
    sel = np.random.default_rng(0).permutation(len(x))[:points]
    palette = ["#08306b", "#67000d"] if c == 2 else ["k"] * c  # darker than the map under them
    ax.scatter(x[sel, 0], x[sel, 1], s=3, c=[palette[i] for i in y[sel]], edgecolors="none", zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    acc = float(np.mean(classifier.probs(params, x).argmax(1) == y))
    return {"accuracy": acc, "grid_confidence_mean": float(p.max(1).mean())}


def class_probability(
    classifier, params, arrays: dict[str, Any], path: Path, step: int | None = None
) -> Path:
    """The classifier task's figure on 2-D toys: p(y | x) with its decision boundary over the test points."""
    fig, ax = plt.subplots(figsize=(6.4, 5.4), layout="constrained")
    extent = _extent(np.asarray(arrays["image"]), 1.0)
    r = probability_panel(ax, classifier, params, arrays, extent)
    c = classifier.cfg
    at = f"step {step}, " if step is not None else ""
    ax.set_title(
        f"mlp on {classifier.spec}: p(y | x), decision boundary (black), test points\n"
        f"hidden {','.join(map(str, c.hidden))} {c.activation} ({at}{_device()}); "
        f"test accuracy {r['accuracy']:.4f}",
        fontsize=9,
    )
    return _save(fig, Path(path))


def discgen(
    classifier,
    clf_params,
    gan,
    arrays: dict[str, Any],
    numbers: dict[str, Any],
    ds,
    path: Path,
    grid: int = 160,
) -> Path:
    """Three panels: (a) p(y | x); (b) the GAN's samples and their KDE density over the true density;
    (c) the classifier's confidence and both densities against distance to the nearest training point."""
    from jaxgen import data
    from jaxgen.discgen import nearest_distance

    probes = arrays["probes"]
    ring, radius = probes["points"], probes["radius"]
    c0 = probes["centre"]
    extent = (c0[0] - radius - 0.5, c0[0] + radius + 0.5, c0[1] - radius - 0.5, c0[1] + radius + 0.5)
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6), layout="constrained")

    ax = axes[0]
    probability_panel(ax, classifier, clf_params, ds.test, extent)
    ax.plot(*np.append(ring, ring[:1], 0).T, "x--", color="k", ms=4, lw=0.6, label="far probes")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(
        f"(a) discriminative: mlp's p(y | x); test accuracy {numbers['classifier_test_accuracy']:.4f}\n"
        f"mean max p(y | x) on the far probes: {numbers['confidence_far_mean']:.4f}"
        f" (at the test points {numbers['confidence_data_mean']:.4f})",
        fontsize=9,
    )

    ax = axes[1]
    pts, (xx, yy) = _grid(extent, grid)
    log_gen = arrays["kde"].logpdf(pts.astype(np.float64).T).reshape(xx.shape) / np.log(10)
    name = ds.spec.split(":", 1)[1]
    log_true = data.toy_logpdf(name, pts).reshape(xx.shape) / np.log(10)
    im = ax.imshow(
        np.clip(log_gen, -4, None), origin="lower", extent=extent, cmap="magma", vmin=-4, aspect="auto"
    )
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="log10 p̂(x), KDE of GAN samples (clipped at -4)")
    ax.contour(xx, yy, log_true, levels=[-2, -1, 0], colors="c", linewidths=0.8)
    s = arrays["samples"][:1500]
    ax.scatter(s[:, 0], s[:, 1], s=1.5, color="C0", alpha=0.6, edgecolors="none", label="GAN samples")
    ax.plot(*np.append(ring, ring[:1], 0).T, "x--", color="w", ms=4, lw=0.6, label="far probes")
    ax.plot([], [], color="c", lw=0.8, label="true density, log10 p = -2, -1, 0")
    ax.legend(fontsize=8, loc="lower left", markerscale=4, facecolor="0.3", labelcolor="w")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(
        f"(b) generative: GAN samples, KDE p̂(x) of {numbers['n_samples']:,}; true density (cyan)\n"
        f"on the far probes p̂ = {numbers['density_gen_far_mean']:.1e} (mean log10 "
        f"{numbers['log10_density_gen_far_mean']:.0f}), true p = {numbers['density_true_far_mean']:.1e}",
        fontsize=9,
    )

    ax = axes[2]
    dist = nearest_distance(pts, ds.train["image"][:5000])
    conf = classifier.probs(clf_params, pts).max(1)
    bins = np.linspace(0, dist.max(), 30)
    which = np.clip(np.digitize(dist, bins) - 1, 0, len(bins) - 2)
    mids = 0.5 * (bins[1:] + bins[:-1])
    keep = np.array([np.any(which == b) for b in range(len(mids))])

    def per_bin(v):
        return np.array([v[which == b].mean() if np.any(which == b) else np.nan for b in range(len(mids))])

    ax.plot(mids[keep], per_bin(conf)[keep], "o-", color="C0", label="classifier: mean max p(y | x)")
    ax.axhline(numbers["chance_confidence"], color="C0", ls=":", lw=1, label="chance (1 / classes)")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("confidence")
    ax.set_xlabel("distance to the nearest training point")
    ax2 = ax.twinx()
    ax2.plot(mids[keep], per_bin(np.clip(log_gen.ravel(), -30, None))[keep], "s-", color="C3",
             label="GAN: mean log10 p̂(x) (KDE; clipped at -30)")  # fmt: skip
    ax2.plot(mids[keep], per_bin(np.clip(log_true.ravel(), -30, None))[keep], "--", color="k",
             label="true mean log10 p(x) (clipped at -30)")  # fmt: skip
    ax2.set_ylabel("log10 density")
    ax2.set_ylim(-31, 2)
    ax.axvline(numbers["probe_min_distance_to_data"], color="0.5", lw=1, label="far probes (nearest)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    ax.set_title(
        f"(c) away from the data: confidence stays, density falls\n{ds.spec}, {_device()}", fontsize=9
    )
    return _save(fig, Path(path))
