"""Discriminative versus generative on one 2-D toy: what a classifier's p(y | x) says far from the data,
against the density p(x) a generative model (the GAN) assigns there.

A classifier only learns where the class boundary lies: on points far from every training point its
softmax is still confident (a ReLU net's logits grow linearly away from the data). A generative model
learns where the data is: a density estimate of its samples is near zero there. `far_probe` measures both
on a ring of probe points around the data, with the true density of the toy beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxgen import data
from jaxgen.errors import UserError

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
