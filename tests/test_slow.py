"""Long checks, run by hand: `pytest -m slow`."""

import pytest

from jaxgen import config, data, train

pytestmark = pytest.mark.slow


def test_default_mlp_reaches_96_5_percent_on_real_held_out_digits(tmp_path, mnist_test5k):
    summary = train.train("mlp", config.make("mlp"), tmp_path / "run", progress=False, make_plots=False)
    task, state, step, _, ds = train.restore_for_eval(tmp_path / "run", f"idx:{mnist_test5k}")
    metrics = task.evaluate(state.params, data.split(ds, "test"))
    print(summary, metrics)
    assert step == config.MLPConfig.steps
    assert metrics["accuracy"] >= 0.965


def test_default_ae_reconstructs_real_held_out_digits_better_than_pca(tmp_path, mnist_test5k):
    train.train("ae", config.make("ae"), tmp_path / "ae", progress=False, make_plots=False)
    task, state, step, _, ds = train.restore_for_eval(tmp_path / "ae", f"idx:{mnist_test5k}")
    m = task.evaluate(state.params, data.split(ds, "test"), train.eval_key(0))
    print(m)
    assert step == config.AEConfig.steps
    assert m["recon_bce"] <= 0.078 < m["pca_recon_bce"]


def test_latent_2_ae_beats_pca_2_in_bce_and_knn(tmp_path, mnist_test5k):
    train.train(
        "ae", config.make("ae", {"latent_dim": 2}), tmp_path / "ae2", progress=False, make_plots=False
    )
    task, state, _, _, ds = train.restore_for_eval(tmp_path / "ae2", f"idx:{mnist_test5k}")
    m = task.evaluate(state.params, data.split(ds, "test"), train.eval_key(0))
    print(m)
    assert m["recon_bce"] < m["pca_recon_bce"] and m["latent_knn_accuracy"] > m["pca_knn_accuracy"]
