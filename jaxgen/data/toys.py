"""Toy data: small Gaussian mixtures in 2-D (and 1-D) whose true density is known, float32[N, D] points with
the mixture component's class as the label."""

from __future__ import annotations

import functools

import numpy as np

from jaxgen.data.arrays import frozen as _frozen

# Fixed seeds, independent of any run seed: the same toy gives the same points in every run.
_TOY_TRAIN_SEED, _TOY_TEST_SEED = 20_000, 5_000
_TOY_TRAIN_SIZE, _TOY_TEST_SIZE = 20_000, 5_000


def _ring(k: int, radius: float) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def _grid(values: tuple[float, ...]) -> np.ndarray:
    return np.array([(x, y) for x in values for y in values], np.float32)


def _moons(per_moon: int) -> np.ndarray:
    """Two interleaved half circles of radius 1 (scikit-learn's make_moons shape), `per_moon` points each:
    the upper arc centred at (0, 0), the lower one at (1, 0.5). Rows alternate upper, lower, upper, ...
    so that any n points spread over the modes in turn are balanced between the two moons."""
    t = np.linspace(0.0, np.pi, per_moon)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    return np.stack([upper, lower], axis=1).reshape(2 * per_moon, 2).astype(np.float32)


MOON_COMPONENTS = 16  # Gaussians per moon, 0.21 apart along the arc: one band, not 16 blobs


# name -> (centers float32[K, D], std): a new toy is one line here.
TOYS: dict[str, tuple[np.ndarray, float]] = {
    "ring8": (_ring(8, 2.0), 0.02),
    "grid25": (_grid((-4.0, -2.0, 0.0, 2.0, 4.0)), 0.05),
    "gauss1d": (np.array([[4.0]], np.float32), 0.5),
    "moons": (_moons(MOON_COMPONENTS), 0.08),
}
# Toys whose label is a class made of several components (default: each component is its own class).
TOY_CLASSES: dict[str, np.ndarray] = {
    "moons": np.tile(np.arange(2, dtype=np.int32), MOON_COMPONENTS),  # label = which moon
}


def toy_classes(name: str) -> np.ndarray:
    """The class of each mode of toy NAME, int32[K]: its own index unless TOY_CLASSES groups modes."""
    return TOY_CLASSES.get(name, np.arange(len(TOYS[name][0]), dtype=np.int32))


def toy_logpdf(name: str, x_NxD: np.ndarray) -> np.ndarray:
    """log p(x) of toy NAME's true density (an equal-weight Gaussian mixture), float64[N]."""
    from scipy.special import logsumexp

    centers, std = (np.asarray(a, np.float64) for a in TOYS[name])
    x = np.asarray(x_NxD, np.float64)
    d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)  # [N, K]
    dim = centers.shape[1]
    log_norm = -0.5 * dim * np.log(2 * np.pi * std**2) - np.log(len(centers))
    return logsumexp(-0.5 * d2 / std**2, axis=1) + log_norm


def _sample_toy(name: str, n: int, seed: int) -> dict[str, np.ndarray]:
    centers, std = TOYS[name]
    rng = np.random.default_rng(seed)
    # Exactly balanced modes (n % K leftovers aside), so mode-coverage metrics have a clean reference;
    # classes made of equally many modes are then balanced too.
    modes = rng.permutation(np.arange(n) % len(centers)).astype(np.int32)
    points = centers[modes] + std * rng.standard_normal((n, centers.shape[1]))
    return {"image": points.astype(np.float32), "label": toy_classes(name)[modes]}


@functools.cache
def _toy_splits(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return (
        _frozen(_sample_toy(name, _TOY_TRAIN_SIZE, _TOY_TRAIN_SEED)),
        _frozen(_sample_toy(name, _TOY_TEST_SIZE, _TOY_TEST_SEED)),
    )
