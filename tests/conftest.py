"""Strict numerics in tests: implicit rank promotion is a bug waiting to happen."""

from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
# GPUs run float32 matmuls as TF32 by default (errors near 1e-3); the tests compare against numpy/float64
# references and golden values printed on the CPU, so they pin full float32 everywhere. Tests of the
# `precision` setting itself open their own scope.
jax.config.update("jax_default_matmul_precision", "highest")

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST5K = REPO.parent / "shared" / "data" / "mnist-test5k"


@pytest.fixture
def mnist_test5k() -> Path:
    """The shared 5,000 real MNIST test digits (IDX), or skip where they are not beside the repo."""
    if not (MNIST_TEST5K / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("../shared/data/mnist-test5k is not here")
    return MNIST_TEST5K
