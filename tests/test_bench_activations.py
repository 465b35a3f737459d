"""The activation benchmark on a tiny configuration: its JSON schema, files, and two textbook facts."""

import copy
import dataclasses
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
from jaxgen.bench import common, measures, uva
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
    res = jax.device_get(measures.make_analysis(task, "relu", 3, 100)(both, batch, *batch.values()))
    assert res["dead"][1, 1] - res["dead"][0, 1] == pytest.approx(1 / 16)
    assert res["never_positive"][1, 1] - res["never_positive"][0, 1] == pytest.approx(1 / 16)
    # The same pre-activations under Leaky ReLU: never positive, yet not dead.
    pre = jax.random.normal(jax.random.key(3), (100, 16)).at[:, 5].set(-1e4)
    leaky = jax.device_get(measures.unit_stats("leaky_relu", pre))
    assert leaky["dead"] == 0 and leaky["never_positive"] >= 1 / 16
    assert jax.device_get(measures.unit_stats("relu", pre))["dead"] >= 1 / 16


def test_unit_stats_saturation():
    pre = jnp.concatenate([jnp.linspace(-1, 1, 100)[:, None] * jnp.ones((1, 3)), jnp.full((100, 1), 9.0)], 1)
    sig = jax.device_get(measures.unit_stats("sigmoid", pre))
    assert sig["saturated"] == pytest.approx(0.25) and sig["dead"] == 0
    assert float(measures.unit_stats("tanh", pre)["saturated"]) == pytest.approx(0.25)
    assert "saturated" not in measures.unit_stats("relu", pre)


def test_a_deep_linear_net_is_one_linear_map():
    ds = data.load("embedded")
    task = bench.build_task("linear", 6, bench.BenchConfig(width=16), 1e-3, ds)
    params = task.init(jax.random.key(1)).params
    x = jax.random.uniform(jax.random.key(2), (32, 784))
    w, b = measures.composed_linear_map(params, 6)
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


# ---------------------------------------------------------------- --preset uva (UvA DL tutorial 3)

UVA_TINY = uva.UvaConfig(
    mode="test",
    activations=("relu",),
    hidden=(8,),
    seeds=2,
    max_epochs=30,
    patience=2,
    batch_size=64,
    lr=0.05,
    val_size=256,
    train_size=512,
    test_size=256,
    eval_batch=128,
)


def test_uva_model_is_784_512_256_256_128_10():
    task = uva.build_uva_task("relu", uva.UVA, data.load("embedded"))
    params = task.init(jax.random.key(0)).params["params"]
    shapes = {name: layer["kernel"].shape for name, layer in params.items()}
    assert shapes == {"hidden_0": (784, 512), "hidden_1": (512, 256), "hidden_2": (256, 256),
                      "hidden_3": (256, 128), "out": (128, 10)}  # fmt: skip
    count = sum(x.size for x in jax.tree.leaves(params))
    assert count == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert count == 633_226


def test_uva_init_is_uniform_within_one_over_sqrt_fan_in_for_kernels_and_biases():
    task = uva.build_uva_task("relu", uva.UVA, data.load("embedded"))
    params = jax.device_get(task.init(jax.random.key(1)).params["params"])
    for name, layer in params.items():
        bound = 1 / math.sqrt(layer["kernel"].shape[0])
        for leaf in ("kernel", "bias"):
            w = np.asarray(layer[leaf])
            assert np.abs(w).max() <= bound, (name, leaf)
            assert np.abs(w).max() > (0.99 if w.size > 1000 else 0.5) * bound, (name, leaf)  # not zeros
        k = np.asarray(layer["kernel"])
        assert k.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform(-b, b): std b / sqrt(3)


def test_uva_inputs_map_pixels_to_minus_one_one():
    pixels = np.arange(256, dtype=np.uint8)[None, :]
    x = uva.uva_inputs(pixels)
    assert x.dtype == np.float32 and x.min() == -1 and x.max() == 1
    np.testing.assert_allclose(x, (pixels / 255 - 0.5) / 0.5, atol=1e-6)
    toy = np.array([[0.3, -2.0]], np.float32)
    assert (uva.uva_inputs(toy) == toy).all()  # toy points are used as they are


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    stopper = uva.EarlyStopping(seeds=2, patience=2)
    # seed 0 peaks at epoch 1 (a tie later is not a new best) and stops after epoch 3; seed 1 keeps improving
    history = [[0.5, 0.1], [0.7, 0.2], [0.7, 0.3], [0.6, 0.4], [0.9, 0.5]]
    improved = [stopper.update(np.array(v)) for v in history]
    assert [m.tolist() for m in improved] == [[True, True], [True, True], [False, True], [False, True],
                                              [False, True]]  # fmt: skip
    assert stopper.best_epoch.tolist() == [1, 4] and stopper.best.tolist() == [0.7, 0.5]  # 0.9 came too late
    assert stopper.epochs_run().tolist() == [4, 5] and stopper.active.tolist() == [False, True]


def test_uva_training_reports_each_seeds_best_validation_epoch():
    ds = data.load("toy:moons")
    dev = jax.device_put(uva.uva_splits(ds, UVA_TINY))
    task = uva.build_uva_task("relu", UVA_TINY, ds)
    correct, _ = uva.make_counts(task, "relu", 1)
    state = jax.vmap(task.init)(measures.seed_keys(UVA_TINY.seeds)[0])
    res = uva.train_early_stopping(task, UVA_TINY, dev, correct, state)
    stopper = res["stopper"]
    history = np.stack(stopper.history, axis=1)  # [seed, epoch]
    runs = stopper.epochs_run()
    assert history.shape[1] == runs.max() <= UVA_TINY.max_epochs  # the program runs to the longest seed
    assert (runs < UVA_TINY.max_epochs).any()  # early stopping did stop a seed here
    for seed in range(UVA_TINY.seeds):
        best = int(np.argmax(history[seed, : runs[seed]]))  # first epoch of the highest accuracy
        assert stopper.best_epoch[seed] == best
        assert runs[seed] == UVA_TINY.max_epochs or runs[seed] == best + UVA_TINY.patience + 1
    # The params kept are the best epoch's: their validation accuracy is that epoch's.
    np.testing.assert_allclose(uva.seed_accuracy(correct, res["params"], dev["val"], 128), stopper.best)


def _tiny_idx(folder, n_train=300, n_test=50):
    """An IDX folder whose image i carries i in its first two pixels (train), labels i % 10."""
    folder.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
        data.write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        data.write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return folder


def test_uva_validation_and_training_splits_do_not_overlap(tmp_path):
    train_idx, val_idx = uva.split_indices(1000, 200, 0, 42)
    assert len(train_idx) == 800 and len(val_idx) == 200 and not set(train_idx) & set(val_idx)
    assert sorted({*train_idx, *val_idx}) == list(range(1000))
    small, _ = uva.split_indices(1000, 200, 300, 42)
    assert len(small) == 300 and not set(small) & set(val_idx)  # the same validation split, a subsample
    with pytest.raises(UserError, match="need more"):
        uva.split_indices(100, 60, 50, 42)
    cfg = dataclasses.replace(UVA_TINY, val_size=100, train_size=0, test_size=0)
    splits = uva.uva_splits(data.load(f"idx:{_tiny_idx(tmp_path / 'idx')}"), cfg)
    index = {
        k: set(np.rint((v["image"][:, 0, :2, 0] + 1) / 2 * 255).astype(int) @ [1, 256])
        for k, v in splits.items()
    }
    assert len(index["train"]) == 200 and len(index["val"]) == 100 and not index["train"] & index["val"]
    assert len(splits["test"]["label"]) == 50


def test_uva_preset_end_to_end_writes_its_report(tmp_path):
    cfg = dataclasses.replace(UVA_TINY, max_epochs=3, activations=("relu", "leaky_relu:0.1"))
    report = uva.run_uva(cfg, tmp_path / "out", spec="toy:moons")
    on_disk = strict_loads((tmp_path / "out" / "activations_uva.json").read_text())
    assert on_disk == json.loads(sinks.dumps(report))
    assert report["preset"] == "uva" and report["device"] and report["anchors"]["test_accuracy_pct"]["relu"]
    for a in report["activations"].values():
        assert len(a["test_accuracy"]["seeds"]) == cfg.seeds == len(a["epochs_run"]) == len(a["best_epoch"])
        assert 0 <= a["trains_fraction"] <= 1 and a["epochs_program"] == max(a["epochs_run"])
        assert len(a["dead_fraction_by_layer_init"]["mean"]) == len(a["dead_fraction_by_layer"]["mean"]) == 1
    md = (tmp_path / "out" / "activations_uva.md").read_text()
    assert uva.UVA_URL in md and report["device"] in md and "88.65%" in md and "1.17%" in md


def test_uva_preset_names_the_fashion_package_when_it_cannot_load(monkeypatch):
    def missing(spec):
        raise UserError(f"no {spec} here")

    monkeypatch.setattr(uva.data, "load", missing)
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist") as err:
        uva.load_preset_data("fashion")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="^no toy:moons here$"):  # another spec's own error is kept
        uva.load_preset_data("toy:moons")


def test_bench_data_spec_replaces_the_default_data():
    loaded = bench.load_data(spec="toy:moons")
    assert loaded["train_spec"] == loaded["test_spec"] == "toy:moons" and loaded["ds"].kind == "toy"
    assert loaded["train"]["image"].shape[1] == 2


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "throughput", "--preset", "uva", "--out", "{tmp}"], "--preset applies to"),
        (["bench", "peers", "--data", "toy:moons", "--out", "{tmp}"], "--data applies to"),
        (
            ["bench", "activations", "--preset", "uva", "--data", "nope", "--out", "{tmp}"],
            "unknown data spec",
        ),
        (["bench", "activations", "--preset", "nope", "--out", "{tmp}"], "invalid choice"),
    ],
)
def test_cli_rejects_preset_mistakes_in_one_line(tmp_path, capsys, argv, match):
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxgen: error: ") and "\n" not in err and match in err
