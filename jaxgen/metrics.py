"""Measures shared by tasks and benchmarks, on host numpy arrays: PCA baseline, kNN accuracy, image
sharpness, Fréchet and kernel (KID) distances and precision/recall/density/coverage between feature sets,
mode coverage of toy mixtures, a Gaussian mixture fit.

Everything here is plain numpy (float64 where it matters) so the figures do not depend on the device.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

# ---------------------------------------------------------------- PCA


def points(x: np.ndarray) -> np.ndarray:
    """x as float64 points [N, D]: an image [H, W, C] is the point of its H*W*C numbers."""
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


@dataclasses.dataclass(frozen=True)
class PCA:
    """Principal components of a training set: x ≈ mean + (x - mean) @ components.T @ components."""

    mean: np.ndarray  # [D]
    components: np.ndarray  # [K, D], orthonormal rows, largest variance first

    def encode(self, x_NxD: np.ndarray) -> np.ndarray:
        """Codes of x (images [N, H, W, C] are read as the flat points [N, D] they are)."""
        return (points(x_NxD) - self.mean) @ self.components.T

    def decode(self, codes_NxK: np.ndarray) -> np.ndarray:
        return np.asarray(codes_NxK, np.float64) @ self.components + self.mean


def pca_fit(x_NxD: np.ndarray, k: int) -> PCA:
    """The top-k principal components of x (SVD of the centred data)."""
    x = points(x_NxD)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return PCA(mean, vt[:k])


def ppca_sample(x_NxD: np.ndarray, k: int, n: int, seed: int = 0) -> np.ndarray:
    """n draws from probabilistic PCA fitted to x (Tipping and Bishop 1999), float64 [n, D]: x = mean + W z
    + e with z ~ N(0, I_k), W = the top-k principal directions scaled by sqrt(lambda_i - sigma^2), and
    e ~ N(0, sigma^2 I), sigma^2 the mean variance of the D - k discarded directions (the maximum-likelihood
    fit). A linear Gaussian generative model: the line any image generator must clear."""
    x = np.asarray(x_NxD, np.float64)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    eig = s**2 / max(len(x) - 1, 1)
    d = x.shape[1]
    k = min(k, len(eig))
    total = float(((x - mean) ** 2).sum() / max(len(x) - 1, 1))
    sigma2 = max(total - float(eig[:k].sum()), 0.0) / max(d - k, 1)
    w = vt[:k].T * np.sqrt(np.maximum(eig[:k] - sigma2, 0.0))  # [D, k]
    rng = np.random.default_rng(seed)
    return mean + rng.standard_normal((n, k)) @ w.T + np.sqrt(sigma2) * rng.standard_normal((n, d))


def bce(probs_NxD: np.ndarray, targets_NxD: np.ndarray, eps: float = 1e-6) -> float:
    """Mean per-pixel binary cross-entropy of predicted probabilities (clipped to [eps, 1 - eps])."""
    p = np.clip(np.asarray(probs_NxD, np.float64), eps, 1 - eps)
    t = np.asarray(targets_NxD, np.float64)
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log1p(-p)))


def mse(a_NxD: np.ndarray, b_NxD: np.ndarray) -> float:
    """Mean per-pixel squared error."""
    return float(np.mean((np.asarray(a_NxD, np.float64) - np.asarray(b_NxD, np.float64)) ** 2))


# ---------------------------------------------------------------- neighbours


def knn_neighbours(train_x: np.ndarray, query_x: np.ndarray, k: int = 5, chunk: int = 10000) -> np.ndarray:
    """Indices [Q, min(k, N)] of each query's k nearest training points (exact Euclidean, float64), nearest
    first: scikit-learn's brute-force search (one GEMM per block and a k-heap per query, multi-threaded),
    `chunk` queries per call. Training points at exactly equal distance are ranked as scikit-learn ranks
    them (the earlier training index is kept when such a tie straddles the k-th place)."""
    from sklearn.neighbors import NearestNeighbors

    train_x = points(train_x)
    k = min(int(k), len(train_x))
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean").fit(train_x)
    out = [
        nn.kneighbors(points(query_x[i : i + chunk]), return_distance=False)
        for i in range(0, len(query_x), chunk)
    ]
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def knn_predict(
    train_x: np.ndarray, train_y: np.ndarray, query_x: np.ndarray, k: int = 5, chunk: int = 10000
) -> np.ndarray:
    """Majority label of each query's k nearest training points (Euclidean, knn_neighbours). Each vote
    weighs 1 + 1e-3 (k - rank), rank 0 the nearest: a tied count goes to the label whose neighbours have
    the smaller rank sum (the nearer ones). scikit-learn's KNeighborsClassifier.predict would give it to
    the lower label instead, hence the neighbours from scikit-learn and the vote here."""
    train_y = np.asarray(train_y)
    nearest = knn_neighbours(train_x, query_x, k, chunk)
    if len(nearest) == 0:
        return np.zeros((0,), np.int64)
    labels = train_y[nearest]  # [Q, k], nearest first
    k = labels.shape[1]
    votes = np.zeros((len(labels), int(train_y.max()) + 1))
    rows = np.arange(len(labels))
    for j in range(k):  # a tiny weight per rank breaks ties towards the nearer neighbours
        np.add.at(votes, (rows, labels[:, j]), 1.0 + 1e-3 * (k - j))
    return votes.argmax(1)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
    """Accuracy of k-nearest-neighbour classification of test points by training points."""
    return float(np.mean(knn_predict(train_x, train_y, test_x, k) == np.asarray(test_y)))


# ---------------------------------------------------------------- images


def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """Per image [N, H, W, C] (or flat square grey rows [N, side * side]), the mean magnitude
    sqrt(dx² + dy²) of its forward-difference gradient over pixels and channels."""
    x = np.asarray(images, np.float64)
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        x = x.reshape(-1, side, side, 1)
    dx = x[:, :-1, 1:] - x[:, :-1, :-1]
    dy = x[:, 1:, :-1] - x[:, :-1, :-1]
    return np.sqrt(dx**2 + dy**2).mean(axis=(1, 2, 3))


def sharpness_ratio(recon_NxD: np.ndarray, originals_NxD: np.ndarray) -> float:
    """Mean image-gradient magnitude of reconstructions over the originals': 1 = as sharp, < 1 blurry."""
    return float(gradient_magnitude(recon_NxD).mean() / gradient_magnitude(originals_NxD).mean())


# ---------------------------------------------------------------- distributions


def frechet_distance(a_NxF: np.ndarray, b_MxF: np.ndarray) -> float:
    """||mu_a - mu_b||² + tr(S_a + S_b - 2 (S_a S_b)^½) between Gaussians fitted to two feature sets."""
    a, b = np.asarray(a_NxF, np.float64), np.asarray(b_MxF, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr (S_a S_b)^½ = Σ sqrt(eig(S_a^½ S_b S_a^½)), a symmetric PSD matrix: stable with eigh.
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_cross = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_cross)


def kid(
    a_NxF: np.ndarray, b_MxF: np.ndarray, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): (mean, std) over `subsets` random subsets of the
    unbiased MMD² estimate with the cubic kernel k(x, y) = (x·y / F + 1)³, as torch-fidelity and clean-fid
    compute it. Each subset is m = min(subset_size, N, M) rows of a, then m rows of b, drawn without
    replacement by numpy's default_rng(seed). Unlike the Fréchet distance it assumes no Gaussian and is
    unbiased, so it can be compared across sample sizes; the price is noise (hence the std) and values
    that can dip below zero when the two sets share a distribution (the diagonals k(x, x) are left out)."""
    a, b = points(a_NxF), points(b_MxF)
    m = min(int(subset_size), len(a), len(b))
    if m < 2:
        raise ValueError(f"kid needs at least 2 points in each set and subset, got m = {m}")
    f = a.shape[1]
    kernel = lambda x, y: (x @ y.T / f + 1.0) ** 3
    rng = np.random.default_rng(seed)
    mmd2 = np.empty(int(subsets))
    for i in range(len(mmd2)):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy = kernel(x, x), kernel(y, y)
        within = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
        mmd2[i] = within / (m * (m - 1)) - 2.0 * kernel(x, y).mean()
    return float(mmd2.mean()), float(mmd2.std())


def _distances(x_BxF: np.ndarray, y_MxF: np.ndarray, y_sq_M: np.ndarray) -> np.ndarray:
    """Euclidean distances [B, M], formed as scikit-learn forms them (float64, one GEMM):
    sqrt(max(-2 x·y + |x|² + |y|², 0)), in place so a block costs one B x M matrix."""
    d = x_BxF @ y_MxF.T
    d *= -2.0
    d += np.einsum("ij,ij->i", x_BxF, x_BxF)[:, None]
    d += y_sq_M[None, :]
    np.maximum(d, 0.0, out=d)
    return np.sqrt(d, out=d)


def _knn_radii(x_NxF: np.ndarray, k: int, block: int) -> np.ndarray:
    """Each point's distance to its k-th nearest other point: the (k+1)-th smallest of its row of distances
    with the zero self-distance in it, as the prdc package takes it (ties and duplicates included)."""
    sq = np.einsum("ij,ij->i", x_NxF, x_NxF)
    radii = np.empty(len(x_NxF))
    for i in range(0, len(x_NxF), block):
        d = _distances(x_NxF[i : i + block], x_NxF, sq)
        rows = np.arange(len(d))
        d[rows, i + rows] = 0.0
        radii[i : i + block] = np.partition(d, k, axis=1)[:, k]
    return radii


def prdc(real_NxF: np.ndarray, fake_MxF: np.ndarray, k: int = 5, *, block: int = 2000) -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real ones (Naeem et al. 2020), as
    the authors' `prdc` package (clovaai/generative-evaluation-prdc) computes them. Each point owns a ball
    out to its k-th nearest neighbour in its own set (Euclidean; strict < throughout):
      precision = share of fakes inside some real ball (fidelity: how many fakes look real);
      recall = share of reals inside some fake ball (diversity: how much of the data G reaches);
      density = mean number of real balls holding a fake, over k (≈ 1 when fake ~ real; fakes piled
        on dense real regions push it above 1, where precision saturates);
      coverage = share of reals whose nearest fake lies inside that real's own ball (the robust recall:
        fake outliers cannot inflate it).
    Same figures as the package, but `block` rows of distances at a time (float64), so 10,000 x 10,000
    never holds a full distance matrix; the real-fake distances are formed once for all four."""
    real, fake = points(real_NxF), points(fake_MxF)
    k = int(k)
    if not 0 < k < min(len(real), len(fake)):
        raise ValueError(f"prdc needs 0 < k < both set sizes: k = {k}, {len(real)} real, {len(fake)} fake")
    r_real, r_fake = _knn_radii(real, k, block), _knn_radii(fake, k, block)
    fake_sq = np.einsum("ij,ij->i", fake, fake)
    in_real_balls = np.zeros(len(fake), np.int64)  # per fake: how many real balls hold it
    reached = np.empty(len(real), bool)  # per real: inside some fake ball
    covered = np.empty(len(real), bool)  # per real: its nearest fake inside its own ball
    for i in range(0, len(real), block):
        d = _distances(real[i : i + block], fake, fake_sq)  # [B, M]
        r = r_real[i : i + block, None]
        in_real_balls += (d < r).sum(0)
        reached[i : i + block] = (d < r_fake[None, :]).any(1)
        covered[i : i + block] = d.min(1) < r[:, 0]
    return {
        "precision": float((in_real_balls > 0).mean()),
        "recall": float(reached.mean()),
        "density": float(in_real_balls.mean() / k),
        "coverage": float(covered.mean()),
    }


def mode_coverage(
    samples_NxD: np.ndarray,
    centers_KxD: np.ndarray,
    std: float,
    *,
    min_count: int = 20,
    reference_n: int = 2500,
) -> dict[str, float | int]:
    """Toy-mixture quality: a sample is high quality within 3 std of its nearest mode's mean; a mode is
    covered when at least min_count per reference_n samples (20 of 2,500) are high-quality and nearest to it.
    """
    x = np.asarray(samples_NxD, np.float64)
    c = np.asarray(centers_KxD, np.float64)
    d = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(-1))  # [N, K]
    nearest = d.argmin(1)
    hq = d[np.arange(len(x)), nearest] <= 3 * std
    counts = np.bincount(nearest[hq], minlength=len(c))
    threshold = min_count * len(x) / reference_n
    return {
        "modes_covered": int((counts >= threshold).sum()),
        "modes_total": int(len(c)),
        "hq_fraction": float(hq.mean()) if len(x) else 0.0,
    }


def fit_gaussian_mixture(x_NxD: np.ndarray, k: int, *, seed: int = 0):
    """A k-component full-covariance Gaussian mixture fitted by EM (scikit-learn), k clipped to N.

    On one BLAS thread: its products are small (N x D by D x D), and OpenBLAS's threads spin against any
    other job on the machine (4,000 32-D codes, 10 components, beside one training job on 2 cores:
    26-28 s on the default threads, 1.3-1.4 s on one)."""
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    x = np.asarray(x_NxD, np.float64)
    gmm = GaussianMixture(min(k, len(x)), covariance_type="full", reg_covar=1e-4, random_state=seed)
    with threadpool_limits(1, user_api="blas"):
        return gmm.fit(x)


def dstar_check(
    d_prob: Callable[[np.ndarray], np.ndarray],
    centers: Any,
    std: float,
    samples_Nx1: np.ndarray,
    pack: int = 1,
    grid_n: int = 400,
) -> dict[str, Any]:
    """A trained D against the optimal D*(x) = p_data^k / (p_data^k + p_g^k) on a 1-D grid, for a mixture
    of Gaussians of one `std` at `centers` (k = pack; `d_prob` gets float32 rows (x, ..., x) of width k and
    returns D's probabilities); p_g is a Gaussian KDE of G's samples. distance = mean |D - D*| weighted by
    (p_data + p_g) / 2 over the grid."""
    from scipy.stats import gaussian_kde

    centers, std = np.asarray(centers, np.float64)[:, 0], float(std)
    s = np.asarray(samples_Nx1, np.float64)[:, 0]
    lo = min(centers.min() - 4 * std, np.quantile(s, 0.001))
    hi = max(centers.max() + 4 * std, np.quantile(s, 0.999))
    x = np.linspace(lo, hi, grid_n)
    p_data = np.mean(np.exp(-0.5 * ((x[:, None] - centers) / std) ** 2), axis=1) / (std * np.sqrt(2 * np.pi))
    p_g = gaussian_kde(s)(x)
    d_star = p_data**pack / np.maximum(p_data**pack + p_g**pack, 1e-300)
    rows = np.repeat(x[:, None], pack, axis=1).astype(np.float32)  # (x, ..., x): D's view of a packed row
    d = np.asarray(d_prob(rows), np.float64)
    w = (p_data + p_g) / 2
    distance = float(np.sum(w * np.abs(d - d_star)) / np.sum(w))
    return {"x": x, "p_data": p_data, "p_g": p_g, "d": d, "d_star": d_star, "distance": distance}
