"""Figures on 2-D toy data: a classifier's p(y | x) over the plane with its decision boundary (and the
panel the lecture's discriminative-versus-generative figure reuses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen.plots.common import plt, save

GRID = 200  # heat-map resolution per axis


def extent_of(x_NxD: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    lo, hi = x_NxD.min(0) - margin, x_NxD.max(0) + margin
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid_points(extent: tuple[float, float, float, float], n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
    xx, yy = np.meshgrid(gx, gy)
    return np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32), (xx, yy)


def probability_panel(ax, classifier, params, arrays: dict[str, Any], extent, points: int = 1500) -> dict:
    """p(y | x) on a grid: two classes as p(y=1 | x) (blue-red), more as the predicted class shaded by its
    probability; the decision boundary in black and test points on top. Returns the grid's numbers."""
    x, y = np.asarray(arrays["image"], np.float32), np.asarray(arrays["label"])
    grid, (xx, yy) = grid_points(extent)
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
    classifier, params, arrays: dict[str, Any], path: Path, step: int | None = None, device: str = "?"
) -> Path:
    """The classifier task's figure on 2-D toys: p(y | x) with its decision boundary over the test points."""
    fig, ax = plt.subplots(figsize=(6.4, 5.4), layout="constrained")
    extent = extent_of(np.asarray(arrays["image"]), 1.0)
    r = probability_panel(ax, classifier, params, arrays, extent)
    c = classifier.cfg
    at = f"step {step}, " if step is not None else ""
    ax.set_title(
        f"mlp on {classifier.spec}: p(y | x), decision boundary (black), test points\n"
        f"hidden {','.join(map(str, c.hidden))} {c.activation} ({at}{device}); "
        f"test accuracy {r['accuracy']:.4f}",
        fontsize=9,
    )
    return save(fig, Path(path))
