"""KID and precision/recall/density/coverage against brute force, the authors' package and known answers."""

import contextlib
import io
import itertools

import numpy as np
import pytest

from jaxgen import metrics


def _gauss(seed, n, f, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, f)) + shift


# ---------------------------------------------------------------- KID


def _mmd2_by_loops(x, y):
    """The unbiased MMD² of Bińkowski et al. term by term, k(u, v) = (u·v / F + 1)³."""
    k = lambda u, v: (float(np.dot(u, v)) / len(u) + 1.0) ** 3
    m = len(x)
    pairs = [(i, j) for i, j in itertools.product(range(m), repeat=2) if i != j]
    xx = sum(k(x[i], x[j]) for i, j in pairs) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in pairs) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_the_unbiased_estimate_by_loops():
    a, b = _gauss(0, 30, 6), _gauss(1, 25, 6, shift=0.5)
    mean, std = metrics.kid(a, b, subsets=1, subset_size=25, seed=3)
    rng = np.random.default_rng(3)  # the documented draw: m rows of a, then m rows of b
    x, y = a[rng.choice(30, 25, replace=False)], b[rng.choice(25, 25, replace=False)]
    assert mean == pytest.approx(_mmd2_by_loops(x, y), rel=1e-10, abs=1e-12)
    assert std == 0.0
    # subsets as large as both sets: every subset is the whole set, so no draw matters
    whole = _mmd2_by_loops(a[:25], b)
    mean, std = metrics.kid(a[:25], b, subsets=3, subset_size=1000)
    assert mean == pytest.approx(whole, rel=1e-10, abs=1e-12) and std < 1e-12


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    a, b = _gauss(0, 600, 16), _gauss(1, 600, 16)
    mean, std = metrics.kid(a, b, subsets=50, subset_size=200)
    assert abs(mean) < 3 * std + 1e-3, (mean, std)
    shifted_mean, shifted_std = metrics.kid(a, _gauss(2, 600, 16, shift=0.5), subsets=50, subset_size=200)
    assert shifted_mean > 0.1 and shifted_mean > 5 * shifted_std, (shifted_mean, shifted_std)
    assert shifted_mean > 20 * abs(mean)


def test_kid_rejects_a_set_of_one():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.kid(_gauss(0, 1, 4), _gauss(1, 10, 4))


# ---------------------------------------------------------------- precision, recall, density, coverage


@pytest.mark.parametrize("k, block", [(5, 128), (3, 2000)])
def test_prdc_equals_the_authors_package(k, block):
    package = pytest.importorskip("prdc")
    real, fake = _gauss(0, 500, 20), _gauss(1, 400, 20, shift=0.3)
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints the set sizes
        expected = package.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = metrics.prdc(real, fake, k, block=block)  # block 128: several blocks and a ragged last one
    assert set(got) == {"precision", "recall", "density", "coverage"}
    for name, value in got.items():
        assert type(value) is float
        assert value == pytest.approx(float(expected[name]), abs=1e-6), name


def test_prdc_same_distribution_and_a_far_shift():
    real, fake = _gauss(0, 2000, 64), _gauss(1, 2000, 64)
    same = metrics.prdc(real, fake, 5)
    # Naeem et al.: for fake ~ real, E[density] = 1 and E[coverage] = 1 - 1/2^k for equal set sizes
    assert same["density"] == pytest.approx(1.0, abs=0.1), same
    assert same["coverage"] == pytest.approx(1 - 1 / 2**5, abs=0.02), same
    assert same["precision"] == pytest.approx(same["recall"], abs=0.05), same
    far = metrics.prdc(real, fake + 50.0, 5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_rejects_k_as_large_as_a_set():
    with pytest.raises(ValueError, match="0 < k"):
        metrics.prdc(_gauss(0, 10, 3), _gauss(1, 5, 3), k=5)


@pytest.mark.slow
def test_prdc_readme_known_answer():
    """The package README: 10,000 real and 10,000 fake N(0, I) in 1,000 dims, k = 5, gives precision
    0.4772, recall 0.4705, density 1.0555, coverage 0.9735 (one draw of theirs). Draw to draw these move
    more than one expects at 10,000 points: over 7 fresh draws (default_rng seeds 0 to 13) precision ran
    0.450-0.497, recall 0.459-0.493, density 0.91-1.08, coverage 0.960-0.975 (on this test's draw the
    package gives the same four figures as prdc), so the bounds are about 3 of those standard deviations."""
    real, fake = _gauss(0, 10000, 1000), _gauss(1, 10000, 1000)
    got = metrics.prdc(real, fake, 5)
    readme = {"precision": 0.4772, "recall": 0.4705, "density": 1.0555, "coverage": 0.9735}
    bounds = {"precision": 0.045, "recall": 0.045, "density": 0.2, "coverage": 0.02}
    for name, value in readme.items():
        assert got[name] == pytest.approx(value, abs=bounds[name]), (name, got)
