"""The two-class toy, the classifier on 2-D toy data, and the discriminative-versus-generative far probe."""

import jax
import numpy as np
import pytest

from jaxgen import data, runs, tasks, train
from jaxgen.data import sources
from jaxgen.errors import UserError
from jaxgen.lecture import discgen


def test_moons_is_two_balanced_deterministic_classes():
    ds = data.load("toy:moons")
    assert ds.kind == "toy" and ds.num_classes == 2 and ds.info["dim"] == 2
    x, y = ds.train["image"], ds.train["label"]
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (20000, 2)
    assert np.bincount(y).tolist() == [10000, 10000]
    assert np.bincount(ds.test["label"]).tolist() == [2500, 2500]
    again = sources._sample_toy("moons", 20000, sources._TOY_TRAIN_SEED)
    np.testing.assert_array_equal(again["image"], x)
    # the label is the moon: the upper arc (centre (0, 0)) is class 0, the lower (centre (1, 0.5)) class 1
    r0 = np.linalg.norm(x, axis=1)
    r1 = np.linalg.norm(x - np.array([1.0, 0.5], np.float32), axis=1)
    assert np.mean(np.abs(r0[y == 0] - 1) < 0.3) > 0.99 and np.mean(np.abs(r1[y == 1] - 1) < 0.3) > 0.99
    # other toys keep one class per mode
    assert data.load("toy:ring8").num_classes == 8 and data.load("toy:gauss1d").num_classes == 1


def test_toy_logpdf_is_a_normalised_density():
    g = np.linspace(-2.5, 3.5, 601)
    xx, yy = np.meshgrid(g, g)
    p = np.exp(data.toy_logpdf("moons", np.stack([xx.ravel(), yy.ravel()], 1)))
    assert abs(p.sum() * (g[1] - g[0]) ** 2 - 1.0) < 1e-3
    x = np.array([[4.0]])  # gauss1d: N(4, 0.5²) at its mean
    assert np.isclose(np.exp(data.toy_logpdf("gauss1d", x))[0], 1 / (0.5 * np.sqrt(2 * np.pi)))


def test_classifier_trains_on_2d_toy_data(tmp_path):
    cfg = tasks.make_config(
        "mlp",
        {"hidden": (32, 32), "steps": 800, "batch_size": 64, "lr": 1e-2, "dropout": 0.0,
         "label_smoothing": 0.0, "ckpt_every": 800, "log_every": 200},
    )  # fmt: skip
    summary = train.train(cfg, tmp_path / "run", "toy:moons", progress=False)
    assert summary["test_accuracy"] >= 0.97, summary
    assert (tmp_path / "run" / "plots" / "p_y_given_x.png").stat().st_size > 10_000
    task, state, _, _, ds, *_ = runs.restore_for_eval(tmp_path / "run")
    p = task.probs(state.params, ds.test["image"][:10])
    assert p.shape == (10, 2) and np.allclose(p.sum(1), 1)
    from jaxgen.judge import Judge

    with pytest.raises(UserError, match="on images"):  # a toy classifier cannot judge generated digits
        Judge(tmp_path / "run")


def test_classifier_on_toys_needs_two_classes_and_never_distorts():
    cfg = tasks.make_config("mlp", {"hidden": (8,)})
    with pytest.raises(UserError, match="two classes"):
        tasks.build(cfg, data.load("toy:gauss1d"))
    task = tasks.build(cfg, data.load("toy:ring8"))
    assert task.augment is False and task.shape == (2,) and task.num_classes == 8
    assert tasks.build(cfg, data.load("embedded")).augment is True


def test_far_probe_on_known_functions():
    train_x = np.array([[0.0, 0.0], [1.0, 0.0]])
    ring = discgen.probe_ring(train_x, gap=3.0, n=8)
    assert np.isclose(ring["radius"], 3.5) and np.allclose(ring["centre"], [0.5, 0.0])
    assert np.isclose(discgen.nearest_distance(ring["points"], train_x).min(), 3.0)
    confident = lambda x: np.tile([0.1, 0.9], (len(x), 1))
    log_gauss = lambda x: -0.5 * (np.asarray(x) ** 2).sum(1) - np.log(2 * np.pi)
    r = discgen.far_probe(
        confident, log_gauss, log_gauss, train_x, train_x, np.array([1, 1]), gap=3.0, n_probes=8
    )
    assert r["classifier_test_accuracy"] == 1.0 and np.isclose(r["confidence_far_mean"], 0.9)
    assert r["probe_min_distance_to_data"] >= 3.0 - 1e-9 and r["n_probes"] == 8
    assert r["density_true_far_mean"] < 0.01 * r["density_true_data_mean"]
    with pytest.raises(UserError, match="2-D"):
        discgen.probe_ring(np.zeros((5, 1)))


def test_far_probe_measure_on_a_tiny_config():
    """Tiny, untrained-ish runs: the measurement's shape and its guarantees, not its values."""
    ds = data.load("toy:moons")
    clf = tasks.build(tasks.make_config("mlp", {"hidden": (16,)}), ds)
    gan = tasks.build(tasks.make_config("gan", {"hidden": (16,), "latent_dim": 2, "steps": 10}), ds)
    key = jax.random.key(0)
    clf_params, gan_params = clf.init(key).params, gan.init(key).params
    numbers, arrays = discgen.measure(clf, clf_params, gan, gan_params, ds, key, n_samples=500, n_probes=16)
    for k in (
        "confidence_far_mean",
        "density_gen_far_mean",
        "density_true_far_mean",
        "classifier_test_accuracy",
    ):
        assert np.isfinite(numbers[k]), k
    assert 0.5 <= numbers["confidence_far_mean"] <= 1.0 and numbers["n_samples"] == 500
    assert numbers["probe_min_distance_to_data"] >= discgen.PROBE_GAP - 1e-6
    assert numbers["density_true_far_mean"] < 1e-100  # the true density is nil two units from the data
    assert arrays["samples"].shape == (500, 2)
    with pytest.raises(UserError, match="2-D toy"):
        discgen.measure(clf, clf_params, gan, gan_params, data.load("toy:gauss1d"), key)
