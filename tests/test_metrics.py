"""Shared measures against hand computations and numpy references."""

import numpy as np
import pytest
import scipy.linalg

from jaxgen import metrics


def test_pca_equals_truncated_svd():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 12)) @ rng.standard_normal((12, 12))
    k = 3
    pca = metrics.pca_fit(x, k)
    centred = x - x.mean(0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    best_rank_k = (u[:, :k] * s[:k]) @ vt[:k] + x.mean(0)  # Eckart-Young: the best rank-k fit
    np.testing.assert_allclose(pca.decode(pca.encode(x)), best_rank_k, atol=1e-10)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(k), atol=1e-12)
    # variance along the components, largest first
    var = pca.encode(x).var(0)
    assert np.all(np.diff(var) <= 0)


def test_bce_and_mse_by_hand():
    p = np.array([[0.5, 0.9]])
    t = np.array([[1.0, 0.0]])
    expected = -(np.log(0.5) + np.log(0.1)) / 2
    assert metrics.bce(p, t) == pytest.approx(expected)
    assert metrics.mse(p, t) == pytest.approx((0.25 + 0.81) / 2)


def test_knn_on_a_separable_toy():
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    train_y = np.repeat(np.arange(3), 30)
    train_x = centers[train_y] + rng.standard_normal((90, 2))
    test_y = np.repeat(np.arange(3), 10)
    test_x = centers[test_y] + rng.standard_normal((30, 2))
    assert metrics.knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 1.0
    # and labels shuffled at random give chance-level accuracy, not 1
    assert metrics.knn_accuracy(train_x, rng.permutation(train_y), test_x, test_y, k=5) < 0.8


def _brute_knn(train_x, train_y, query_x, k):
    """Reference: full sort of every distance; majority label, a tied count to the smaller rank sum
    (integer scores 1000 + k - rank per vote), then the lower label. Also returns the neighbours and
    whether each query's vote was an exact tie (a tied count and a tied rank sum)."""
    d2 = np.stack([((train_x - q) ** 2).sum(-1) for q in query_x])
    nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
    scores = np.zeros((len(query_x), int(train_y.max()) + 1), np.int64)
    for j in range(k):
        np.add.at(scores, (np.arange(len(query_x)), train_y[nearest[:, j]]), 1000 + k - j)
    top2 = np.sort(scores, axis=1)[:, -2:]
    return scores.argmax(1), nearest, top2[:, 0] == top2[:, 1]


@pytest.mark.parametrize("n, k", [(2000, 5), (60000, 5), (300, 1), (300, 8)])
def test_knn_agrees_with_brute_force_numpy(n, k):
    rng = np.random.default_rng(n + k)
    train_x = rng.standard_normal((n, 32))
    train_y = rng.integers(0, 10, n)
    query_x = rng.standard_normal((150, 32))
    ref, ref_nearest, exact_tie = _brute_knn(train_x, train_y, query_x, k)
    np.testing.assert_array_equal(metrics.knn_neighbours(train_x, query_x, k, chunk=64), ref_nearest)
    pred = metrics.knn_predict(train_x, train_y, query_x, k, chunk=64)
    assert exact_tie.mean() < 0.2  # the tie rule is exercised on the rest: many counts tie at k=5 of 10
    np.testing.assert_array_equal(pred[~exact_tie], ref[~exact_tie])
    acc = metrics.knn_accuracy(train_x, train_y, query_x, ref, k)
    assert acc == pytest.approx(1 - np.mean(pred != ref))


def test_knn_with_k_above_the_reference_size_votes_over_all():
    train_x = np.array([[0.0], [1.0], [2.0]])
    assert metrics.knn_neighbours(train_x, np.array([[1.9]]), k=5).tolist() == [[2, 1, 0]]
    # a tie of counts (one each) goes to the nearest
    assert metrics.knn_predict(train_x, np.array([0, 1, 2]), np.array([[0.2], [1.9]]), k=5).tolist() == [0, 2]


def test_sharpness_ratio_is_one_for_identical_and_below_for_blurred():
    rng = np.random.default_rng(2)
    imgs = (rng.random((5, 784)) > 0.7).astype(np.float64)
    assert metrics.sharpness_ratio(imgs, imgs) == pytest.approx(1.0)
    x = imgs.reshape(5, 28, 28)
    blurred = (x + np.roll(x, 1, 1) + np.roll(x, -1, 1) + np.roll(x, 1, 2) + np.roll(x, -1, 2)) / 5
    assert metrics.sharpness_ratio(blurred.reshape(5, 784), imgs) < 0.7


def test_frechet_distance_against_the_scipy_formula():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((500, 4))
    b = rng.standard_normal((400, 4)) @ np.diag([1.0, 2.0, 0.5, 1.0]) + 1.0
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # a pure shift by d adds |d|^2
    assert metrics.frechet_distance(a, a + 3.0) == pytest.approx(4 * 9.0, rel=1e-9)


def test_gaussian_mixture_recovers_two_clusters():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal((300, 2)) - 5, rng.standard_normal((300, 2)) + 5])
    gmm = metrics.fit_gaussian_mixture(x, 2)
    np.testing.assert_allclose(np.sort(gmm.means_[:, 0]), [-5, 5], atol=0.3)


def test_ppca_samples_have_the_fitted_covariance():
    """Probabilistic PCA (the linear baseline generator): on data from a rank-2 Gaussian plus isotropic
    noise, its samples' covariance is the data's: the top-2 variances and the noise floor come back."""
    rng = np.random.default_rng(0)
    d, n = 20, 20_000
    basis = np.linalg.qr(rng.standard_normal((d, 2)))[0]  # two orthonormal directions
    x = rng.standard_normal((n, 2)) * [3.0, 2.0] @ basis.T + 0.1 * rng.standard_normal((n, d)) + 5.0
    s = metrics.ppca_sample(x, 2, n, seed=1)
    assert s.shape == (n, d)
    np.testing.assert_allclose(s.mean(0), x.mean(0), atol=0.1)
    np.testing.assert_allclose(np.cov(s.T), np.cov(x.T), atol=0.15)
    resid = s - s.mean(0) - (s - s.mean(0)) @ basis @ basis.T  # off the two directions: the noise alone
    assert resid.var(0).mean() == pytest.approx(0.01, rel=0.1)
