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
