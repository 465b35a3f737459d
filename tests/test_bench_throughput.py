"""The throughput benchmark on a tiny configuration: schema, files, sane numbers, CLI."""

import json
import math

import pytest

from jaxgen import cli
from jaxgen.bench import common
from jaxgen.bench import throughput as bench

TINY = bench.ThroughputConfig(
    mode="test",
    hidden=((32,),),
    batch_sizes=(16, 32, 100000),
    steps=3,
    reps=2,
    tasks=("mlp",),
    ceiling_sizes=(256,),
    sizes=(),
)


def test_schema_files_and_numbers(tmp_path):
    report = bench.run(TINY, tmp_path)
    assert json.loads((tmp_path / "throughput.json").read_text())["results"] == report["results"]
    for key in ("device", "backend", "num_devices", "results", "wall_s", "env"):
        assert key in report
    assert report["skipped_batch_sizes"] == [100000]
    assert [r["batch_size"] for r in report["results"]] == [16, 32]
    for r in report["results"]:
        assert r["params"] == 784 * 32 + 32 + 32 * 10 + 10
        assert r["samples_per_s"]["mean"] > 0 and r["samples_per_s"]["std"] >= 0 and r["compile_s"] > 0
        # mean(batch / t) * mean(t) >= batch (Jensen); equal when every timed call took as long; a noisy
        # shared machine spreads the calls, so only a loose upper bound holds everywhere
        product = r["samples_per_s"]["mean"] * r["step_ms"]["mean"] / 1e3
        assert 0.999 * r["batch_size"] <= product < 3 * r["batch_size"]
    md = (tmp_path / "throughput.md").read_text()
    assert report["device"] in md and "| mlp | 32 | 25,450 | 16 |" in md
    for r in report["results"]:  # an MLP step is its dense layers: ~6 flops per weight per sample
        assert 5.5 * r["params"] < r["flops_per_sample"] < 9 * r["params"]
        assert 0 < r["ceiling_fraction"] < 1.5 and r["per_step_loop_samples_per_s"] > 0
    assert (tmp_path / "throughput.png").stat().st_size > 0


def test_cli_names_the_benchmarks(capsys, tmp_path):
    assert cli.main(["bench", "speed", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "activations" in err and "throughput" in err and "\n" not in err.strip()


EVERY_TASK = ("mlp", "ae", "gan", "mlp-conv", "ae-conv", "gan-conv")


def every_task_report(tmp_path, names):
    cfg = bench.ThroughputConfig(
        mode="test", batch_sizes=(64,), steps=2, reps=1, ceiling_sizes=(128,), per_step=False, sizes=(),
        conv_steps=1, tasks=names,
    )  # fmt: skip
    report = bench.run(cfg, tmp_path, plots=False)
    assert [r["task"] for r in report["results"]] == list(names)
    assert all(r["flops_per_sample"] > 0 and r["samples_per_s"]["mean"] > 0 for r in report["results"])


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_every_task_is_measured(tmp_path):
    """Every task by default; here the MLP ones (the conv ones compile for minutes: the slow test below,
    and mlp-conv in test_conv_tasks_are_timed_with_their_own_steps)."""
    assert bench.ThroughputConfig().tasks == EVERY_TASK
    every_task_report(tmp_path, EVERY_TASK[:3])


@pytest.mark.slow
def test_every_task_is_measured_conv_included(tmp_path):
    every_task_report(tmp_path, EVERY_TASK)


def test_a_nan_in_the_report_is_written_as_null(tmp_path, monkeypatch):
    """A ceiling that could not be measured (NaN) makes every ceiling fraction NaN: null in the JSON."""
    monkeypatch.setattr(common, "gemm_ceiling", lambda sizes: {"flops_per_s": math.nan, "n": 0})
    cfg = bench.ThroughputConfig(
        mode="test",
        hidden=((32,),),
        batch_sizes=(16,),
        steps=2,
        reps=1,
        tasks=("mlp",),
        per_step=False,
        sizes=(),
    )
    report = bench.run(cfg, tmp_path, plots=False)
    assert math.isnan(report["results"][0]["ceiling_fraction"])

    def refuse(name):
        raise ValueError(f"bare {name} in the JSON")

    on_disk = json.loads((tmp_path / "throughput.json").read_text(), parse_constant=refuse)
    assert on_disk["results"][0]["ceiling_fraction"] is None and on_disk["ceiling"]["flops_per_s"] is None


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_scratch_memory_does_not_grow_with_the_training_set(tmp_path):
    """The same chunk on 4,500 and on 20,000 training images (the sample repeated where Fashion-MNIST is
    absent): XLA's scratch memory is the same; the speed is in the report (timing is not tested)."""
    cfg = bench.ThroughputConfig(
        mode="test",
        hidden=((32,),),
        batch_sizes=(16,),
        steps=2,
        reps=1,
        tasks=("mlp",),
        per_step=False,
        ceiling_sizes=(128,),
        sizes=(4500, 20000),
    )
    report = bench.run(cfg, tmp_path, plots=False)
    small, large = report["size_scaling"]
    assert (small["train_examples"], large["train_examples"]) == (4500, 20000)
    assert large["data"] == "embedded repeated to 20,000"
    assert small["temp_bytes"] == large["temp_bytes"] and large["samples_per_s"]["mean"] > 0
    assert "### The training set's size" in (tmp_path / "throughput.md").read_text()


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_conv_tasks_are_timed_with_their_own_steps(tmp_path):
    import dataclasses

    cfg = dataclasses.replace(
        TINY, tasks=("mlp-conv",), batch_sizes=(16, 512), conv_steps=2, conv_max_batch=128
    )
    report = bench.run(cfg, tmp_path, plots=False)
    (r,) = report["results"]  # batch 512 is above conv_max_batch: not timed
    assert r["task"] == "mlp-conv" and r["batch_size"] == 16
    # a conv step is mostly its convolutions: far more FLOPs per sample than its weights suggest
    assert r["flops_per_sample"] > 20 * r["params"]
    assert bench.for_task(cfg, "ae-conv").steps == 2 and bench.for_task(cfg, "ae").steps == TINY.steps
