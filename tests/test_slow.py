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
