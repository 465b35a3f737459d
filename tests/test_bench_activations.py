"""The activation benchmark on a tiny configuration: its JSON schema, files, and two textbook facts."""

import copy
import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import cli, data, sinks
from jaxgen.bench import activations as bench
from jaxgen.bench import common
from jaxgen.bench import report as activation_report
from jaxgen.errors import UserError

TINY = bench.BenchConfig(
    mode="test",
    activations=("sigmoid", "relu", "leaky_relu"),
    depth=10,
    width=32,
    seeds=2,
    steps=40,
    chunks=2,
    batch_size=64,
    grad_batch=128,
    probe_size=200,
    elementwise_size=1 << 12,
    elementwise_reps=2,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, bench.run(TINY, out)


def test_json_schema_and_files(tiny):
    out, report = tiny
    assert json.loads((out / "activations.json").read_text()) == json.loads(sinks.dumps(report))
    for key in (
        "device",
        "backend",
        "activations",
        "layers",
        "test_data",
        "config",
        "env",
        "claims",
        "wall_s",
    ):
        assert key in report, key
    assert isinstance(report["device"], str) and report["backend"] == jax.default_backend()
    assert report["layers"] == [f"hidden_{i}" for i in range(10)] + ["out"]
    assert set(report["activations"]) == set(TINY.activations)
    for name, a in report["activations"].items():
        assert a["init"] == ("glorot_uniform" if name == "sigmoid" else "he_normal")
        assert len(a["grad_norm_by_layer"]) == TINY.depth + 1
        assert all(isinstance(g, float) and g > 0 for g in a["grad_norm_by_layer"])
        assert len(a["grad_norm_by_layer_shared_init"]) == TINY.depth + 1
        assert len(a["history"]["steps"]) == TINY.chunks + 1 == len(a["history"]["grad_norm_by_layer"])
        acc = a["test_accuracy"]
        assert set(acc) == {"mean", "std", "seeds"} and len(acc["seeds"]) == TINY.seeds
        assert 0 <= acc["mean"] <= 1 and acc["std"] >= 0
        assert 0 <= a["dead_fraction"] <= 1 and len(a["dead_fraction_by_layer"]) == TINY.depth
        assert a["samples_per_s"] > 0 and a["compile_s"] > 0 and a["elementwise_ms"] > 0
        assert (a["saturated_fraction"] is None) == (name != "sigmoid")
    assert report["linear_collapse"] is None  # no "linear" among the activations
    for f in ("activations.md", *report["figures"]):
        assert (out / f).stat().st_size > 0, f
    assert {"grad_flow_init.png", "accuracy.png", "dead_saturated.png", "speed.png"} <= set(report["figures"])
    md = (out / "activations.md").read_text()
    assert "| activation |" in md and report["device"] in md and all(n in md for n in TINY.activations)


def strict_loads(text: str):
    """json.loads that refuses the bare NaN / Infinity Python's json writes by default."""

    def refuse(name: str):
        raise ValueError(f"bare {name} in the JSON")

    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_non_finite_numbers_as_null(tmp_path):
    with_nan = {"a": math.nan, "b": [1.0, math.inf], "c": {"d": -math.inf}}
    with pytest.raises(ValueError, match="bare NaN"):
        strict_loads(json.dumps(with_nan))  # what json.dumps writes: not JSON
    text = common.write_json(tmp_path / "r.json", with_nan).read_text()
    assert strict_loads(text) == {"a": None, "b": [1.0, None], "c": {"d": None}}


def test_a_nan_in_the_activation_report_is_written_as_null(tiny, tmp_path):
    doc = copy.deepcopy(tiny[1])
    doc["activations"]["relu"]["samples_per_s_std"] = math.nan  # e.g. a timing lost in noise
    activation_report.write(doc, tmp_path, 0.0, plots=False)
    on_disk = strict_loads((tmp_path / "activations.json").read_text())
    assert on_disk["activations"]["relu"]["samples_per_s_std"] is None
    assert (tmp_path / "activations.md").read_text().startswith("## Activation benchmark")


def test_out_that_cannot_be_a_directory_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(UserError, match="name a directory"):
            common.out_dir(bad)
    assert common.out_dir(tmp_path / "a" / "b").is_dir()


def test_sigmoid_gradients_vanish_where_relu_ones_do_not(tiny):
    acts = tiny[1]["activations"]
    assert acts["sigmoid"]["grad_ratio_first_last"] * 100 <= acts["relu"]["grad_ratio_first_last"]
    claim = next(c for c in tiny[1]["claims"] if c["claim"].startswith("sigmoid's gradients"))
    assert claim["verdict"] == "supported"


def test_relu_units_die_leaky_relu_units_do_not(tiny):
    acts = tiny[1]["activations"]
    assert acts["relu"]["dead_fraction"] > 0
    assert acts["leaky_relu"]["dead_fraction"] == 0
    assert acts["leaky_relu"]["never_positive_fraction"] > 0  # negative everywhere, yet not dead


def test_dead_unit_counter_on_a_unit_pushed_below_zero():
    ds = data.load("embedded")
    batch = {"image": jnp.asarray(ds.test["image"][:100]), "label": jnp.asarray(ds.test["label"][:100])}
    task = bench.build_task("relu", 3, bench.BenchConfig(width=16), 1e-3, ds)
    params = task.init(jax.random.key(0)).params
    pushed = jax.tree.map(lambda x: x, params)
    bias = pushed["params"]["hidden_1"]["bias"]
    pushed["params"]["hidden_1"]["bias"] = bias.at[5].set(-1e4)  # unit 5 of layer 1: negative on every input
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, pushed)
    res = jax.device_get(bench.make_analysis(task, "relu", 3, 100)(both, batch, *batch.values()))
    assert res["dead"][1, 1] - res["dead"][0, 1] == pytest.approx(1 / 16)
    assert res["never_positive"][1, 1] - res["never_positive"][0, 1] == pytest.approx(1 / 16)
    # The same pre-activations under Leaky ReLU: never positive, yet not dead.
    pre = jax.random.normal(jax.random.key(3), (100, 16)).at[:, 5].set(-1e4)
    leaky = jax.device_get(bench.unit_stats("leaky_relu", pre))
    assert leaky["dead"] == 0 and leaky["never_positive"] >= 1 / 16
    assert jax.device_get(bench.unit_stats("relu", pre))["dead"] >= 1 / 16


def test_unit_stats_saturation():
    pre = jnp.concatenate([jnp.linspace(-1, 1, 100)[:, None] * jnp.ones((1, 3)), jnp.full((100, 1), 9.0)], 1)
    sig = jax.device_get(bench.unit_stats("sigmoid", pre))
    assert sig["saturated"] == pytest.approx(0.25) and sig["dead"] == 0
    assert float(bench.unit_stats("tanh", pre)["saturated"]) == pytest.approx(0.25)
    assert "saturated" not in bench.unit_stats("relu", pre)


def test_a_deep_linear_net_is_one_linear_map():
    ds = data.load("embedded")
    task = bench.build_task("linear", 6, bench.BenchConfig(width=16), 1e-3, ds)
    params = task.init(jax.random.key(1)).params
    x = jax.random.uniform(jax.random.key(2), (32, 784))
    w, b = bench.composed_linear_map(params, 6)
    assert w.shape == (784, 10)
    np.testing.assert_allclose(x @ w + b[None, :], task.model.apply(params, x), rtol=1e-4, atol=1e-5)


def test_softmax_regression_has_no_hidden_layer():
    task = bench.build_task("linear", 0, bench.BenchConfig(), 1e-2, data.load("embedded"))
    params = task.init(jax.random.key(0)).params
    assert list(params["params"]) == ["out"] and params["params"]["out"]["kernel"].shape == (784, 10)


def test_missing_test_digits_fall_back_to_the_embedded_split(tmp_path):
    loaded = bench.load_data(tmp_path)
    assert loaded["test_spec"] == "embedded" and len(loaded["test"]["label"]) == 500


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "nope", "--out", "{tmp}"], "invalid choice"),
        (["bench", "activations", "--quick"], "--out"),
        (["bench", "activations", "--quick", "--out", "{tmp}/file"], "is a file"),
    ],
)
def test_cli_rejects_bench_mistakes_in_one_line(tmp_path, capsys, argv, match):
    (tmp_path / "file").write_text("x")
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxgen: error: ") and "\n" not in err and match in err


def test_benchmark_script_is_the_same_cli():
    proc = subprocess.run(
        [sys.executable, "benchmarks/activations.py", "--quick"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=bench.REPO,
    )
    assert proc.returncode == 2 and "--out" in proc.stderr and proc.stdout == ""
