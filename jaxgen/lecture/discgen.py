"""Discriminative versus generative on one 2-D toy: what a classifier's p(y | x) says far from the data,
against the density p(x) a generative model (the GAN) assigns there.

A classifier only learns where the class boundary lies: on points far from every training point its
softmax is still confident (a ReLU net's logits grow linearly away from the data). A generative model
learns where the data is: a density estimate of its samples is near zero there. `far_probe` measures both
on a ring of probe points around the data, with the true density of the toy beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen import data, runtime
from jaxgen.errors import UserError
from jaxgen.plots import toy
from jaxgen.plots.common import plt, save

PROBE_GAP = 2.0  # the probe ring lies this far outside the farthest training point from the data's centre
PROBES = 64  # points on the probe ring
SAMPLES = 5000  # generator samples the density estimate is fitted to


def probe_ring(points_NxD: np.ndarray, gap: float = PROBE_GAP, n: int = PROBES) -> dict[str, Any]:
    """n points on a circle around the centre of `points`, `gap` beyond the farthest of them."""
    x = np.asarray(points_NxD, np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise UserError(f"the far probe is drawn in the plane: need 2-D toy data, got shape {x.shape}")
    if not gap > 0 or n < 1:
        raise UserError(f"probe ring needs gap > 0 and n >= 1, got gap={gap}, n={n}")
    centre = x.mean(0)
    radius = float(np.sqrt(((x - centre) ** 2).sum(1)).max() + gap)
    angles = 2 * np.pi * np.arange(n) / n
    ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return {"points": ring, "centre": centre, "radius": radius}


def nearest_distance(query_QxD: np.ndarray, points_NxD: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distance from each query to its nearest point, float64[Q]."""
    p = np.asarray(points_NxD, np.float64)
    sq_p = (p**2).sum(1)
    out = []
    for i in range(0, len(query_QxD), chunk):
        q = np.asarray(query_QxD[i : i + chunk], np.float64)
        d2 = (q**2).sum(1)[:, None] - 2 * q @ p.T + sq_p[None, :]
        out.append(np.sqrt(np.clip(d2.min(1), 0, None)))
    return np.concatenate(out) if out else np.zeros((0,))


def kde(samples_NxD: np.ndarray):
    """A Gaussian kernel density estimate (scipy, Scott's bandwidth) of generator samples."""
    from scipy.stats import gaussian_kde

    return gaussian_kde(np.asarray(samples_NxD, np.float64).T)


def far_probe(
    class_probs,
    gen_logpdf,
    true_logpdf,
    train_x: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    gap: float = PROBE_GAP,
    n_probes: int = PROBES,
) -> dict[str, Any]:
    """The classifier's confidence and the two densities on the probe ring and on the test points.

    class_probs(x) -> p(y | x) [N, C]; gen_logpdf(x), true_logpdf(x) -> log p(x) [N]. Densities are
    reported as means of p (what the picture shows) and of log10 p (finite where p underflows to 0).
    """
    ring = probe_ring(train_x, gap, n_probes)
    probes = ring["points"]
    p_far, p_data = np.asarray(class_probs(probes)), np.asarray(class_probs(test_x))
    out: dict[str, Any] = {
        "classifier_test_accuracy": float(np.mean(p_data.argmax(-1) == np.asarray(test_y))),
        "confidence_far_mean": float(p_far.max(-1).mean()),
        "confidence_far_min": float(p_far.max(-1).min()),
        "confidence_data_mean": float(p_data.max(-1).mean()),
        "chance_confidence": 1.0 / p_far.shape[1],
    }
    for name, logpdf in (("gen", gen_logpdf), ("true", true_logpdf)):
        far, at_data = np.asarray(logpdf(probes), np.float64), np.asarray(logpdf(test_x), np.float64)
        out[f"density_{name}_far_mean"] = float(np.exp(far).mean())
        out[f"density_{name}_data_mean"] = float(np.exp(at_data).mean())
        out[f"log10_density_{name}_far_mean"] = float(far.mean() / np.log(10))
        out[f"log10_density_{name}_far_max"] = float(far.max() / np.log(10))
        out[f"log10_density_{name}_data_mean"] = float(at_data.mean() / np.log(10))
    out.update(
        probe_radius=ring["radius"],
        probe_centre=[float(c) for c in ring["centre"]],
        probe_gap=float(gap),
        probe_min_distance_to_data=float(nearest_distance(probes, train_x).min()),
        n_probes=int(n_probes),
        n_test=int(len(test_x)),
    )
    return out


def measure(
    classifier: Any,
    clf_params: Any,
    gan: Any,
    gan_params: Any,
    ds: data.Dataset,
    key: Any,
    *,
    n_samples: int = SAMPLES,
    gap: float = PROBE_GAP,
    n_probes: int = PROBES,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers, arrays for the figure): a trained mlp and gan on the same 2-D toy `ds`, far-probed.

    The generative density is a Gaussian KDE of n_samples GAN samples drawn with `key`.
    """
    if ds.kind != "toy" or int(ds.info["dim"]) != 2:
        raise UserError(f"discriminative vs generative needs a 2-D toy (e.g. toy:moons), got {ds.spec!r}")
    for task, want in ((classifier, "mlp"), (gan, "gan")):
        if task.name != want or getattr(task, "spec", ds.spec) != ds.spec:
            raise UserError(f"expected a {want} run trained on {ds.spec}, got {task.name} on {task.spec}")
    samples = gan.sample(gan_params, key, n_samples)
    density = kde(samples)
    name = ds.spec.split(":", 1)[1]
    numbers = far_probe(
        lambda x: classifier.probs(clf_params, np.asarray(x, np.float32)),
        lambda x: density.logpdf(np.asarray(x, np.float64).T),
        lambda x: data.toy_logpdf(name, x),
        ds.train["image"],
        ds.test["image"],
        ds.test["label"],
        gap=gap,
        n_probes=n_probes,
    )
    numbers.update(n_samples=int(n_samples), kde_bandwidth_factor=float(density.factor), data=ds.spec)
    arrays = {"samples": samples, "kde": density, "probes": probe_ring(ds.train["image"], gap, n_probes)}
    return numbers, arrays


# ---------------------------------------------------------------- the figure


def discgen_figure(
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
    probes = arrays["probes"]
    ring, radius = probes["points"], probes["radius"]
    c0 = probes["centre"]
    extent = (c0[0] - radius - 0.5, c0[0] + radius + 0.5, c0[1] - radius - 0.5, c0[1] + radius + 0.5)
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6), layout="constrained")
    _classifier_panel(axes[0], classifier, clf_params, ds, ring, extent, numbers)
    pts, log_gen, log_true = _density_panel(axes[1], arrays, ds, ring, extent, grid, numbers)
    _distance_panel(axes[2], classifier, clf_params, ds, pts, log_gen, log_true, numbers)
    return save(fig, Path(path))


def _ring_line(ring: np.ndarray) -> np.ndarray:
    """The probe ring closed on itself, as (x, y) rows for ax.plot."""
    return np.append(ring, ring[:1], 0).T


def _classifier_panel(ax, classifier, clf_params, ds, ring, extent, numbers: dict[str, Any]) -> None:
    """(a) the classifier's p(y | x) with the far probes."""
    toy.probability_panel(ax, classifier, clf_params, ds.test, extent)
    ax.plot(*_ring_line(ring), "x--", color="k", ms=4, lw=0.6, label="far probes")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(
        f"(a) discriminative: mlp's p(y | x); test accuracy {numbers['classifier_test_accuracy']:.4f}\n"
        f"mean max p(y | x) on the far probes: {numbers['confidence_far_mean']:.4f}"
        f" (at the test points {numbers['confidence_data_mean']:.4f})",
        fontsize=9,
    )


def _density_panel(ax, arrays, ds, ring, extent, grid: int, numbers: dict[str, Any]):
    """(b) the KDE of the GAN's samples over the grid, the true density's contours, the samples and the
    probes; returns (grid points, log10 p̂ on them, log10 p on them) for panel (c)."""
    pts, (xx, yy) = toy.grid_points(extent, grid)
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
    ax.plot(*_ring_line(ring), "x--", color="w", ms=4, lw=0.6, label="far probes")
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
    return pts, log_gen, log_true


def _distance_panel(ax, classifier, clf_params, ds, pts, log_gen, log_true, numbers: dict[str, Any]) -> None:
    """(c) the classifier's confidence and both log densities, binned by distance to the training data."""
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
        f"(c) away from the data: confidence stays, density falls\n{ds.spec}, {runtime.device_name()}",
        fontsize=9,
    )
