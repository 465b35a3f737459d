"""The logs researchers read (issue 32): TensorBoard gets a run's config and hyperparameters once, an image
per checkpoint (also samples/step-N.png); metrics.jsonl rows carry wall-clock times and samples/s, and
elapsed_s goes on across a resume. Read with TensorBoard's own reader, from the shared tiny runs."""

import json
import shutil

import pytest
from conftest import TINY_RUNS
from PIL import Image

from jaxgen import cli
from jaxgen.plots.common import read_metrics
from jaxgen.sinks import CLOCK_KEYS, metric_rows

CHECKPOINTS = {"gan": [2, 4], "ae": [20, 40]}  # conftest.TINY_RUNS' ckpt_every and steps
IMAGE_TAGS = {"gan": "samples", "ae": "reconstructions"}
HPARAMS_TAGS = ("_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info")


def accumulator(run_dir):
    """TensorBoard's reader over the run's tb/ folder, every image and tensor kept."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize("kind", ["gan", "ae"])
def test_tensorboard_holds_the_config_hyperparameters_and_an_image_per_checkpoint(kind, tiny_runs):
    wd = tiny_runs(kind)
    acc = accumulator(wd)
    from tensorboard.plugins.hparams import plugin_data_pb2

    resolved = json.loads((wd / "resolved.json").read_text())
    content = acc.PluginTagToContent("hparams")
    assert set(content) == set(HPARAMS_TAGS)
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["task"].string_value == resolved["task"]
    assert hparams["data"].string_value == resolved["data"]
    assert hparams["steps"].number_value == resolved["steps"]
    assert hparams["hidden"].string_value == ",".join(map(str, resolved["hidden"]))  # a list: as --set has it
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics[0].startswith("test/") and set(metrics) <= set(acc.Tags()["scalars"])
    text = acc.Tensors("config/text_summary")
    assert len(text) == 1 and text[0].step == 0
    body = text[0].tensor_proto.string_val[0].decode()
    assert body.startswith("```json\n") and json.loads(body.strip("`\n")[len("json") :]) == resolved
    images = acc.Images(IMAGE_TAGS[kind])
    assert [i.step for i in images] == CHECKPOINTS[kind]
    for i in images:  # the PNG beside it is the same picture
        png = Image.open(wd / "samples" / f"step-{i.step:06d}.png")
        assert png.mode == "RGB" and png.size == (i.width, i.height)
    assert not {"time", "elapsed_s"} & set(acc.Tags()["scalars"])  # every event has its own wall time


def test_metrics_rows_are_timed_and_elapsed_s_goes_on_across_a_resume(tiny_runs, tmp_path):
    rows = metric_rows(tiny_runs("mlp") / "metrics.jsonl")
    train, evals = [r for r in rows if "train/loss" in r], [r for r in rows if "test/accuracy" in r]
    assert train and evals
    assert all(r["samples_per_s"] > 0 for r in train) and not any("samples_per_s" in r for r in evals)
    times = [r["time"] for r in rows]
    elapsed = [r["elapsed_s"] for r in rows]
    assert times == sorted(times) and elapsed == sorted(elapsed) and 0 < elapsed[0]
    # the readers of metrics leave the times out: no curve of them, no summary key taken from them
    assert not set(CLOCK_KEYS) & set(read_metrics(tiny_runs("mlp")))
    summary = json.loads((tiny_runs("mlp").parent / "summary.json").read_text())
    assert "time" not in summary and "elapsed_s" not in summary

    wd = tmp_path / "run"  # cut back to its step-10 checkpoint, as if killed after it, and rerun
    shutil.copytree(tiny_runs("mlp"), wd)
    shutil.rmtree(wd / "checkpoints" / "20")
    lines = (wd / "metrics.jsonl").read_text().splitlines()
    kept = [json.loads(line) for line in lines if json.loads(line)["step"] <= 10]
    kept[-1]["elapsed_s"] = 1000.0  # a long first start
    (wd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    argv = TINY_RUNS["mlp"]
    assert cli.main([*argv[:2], "--workdir", str(wd), *argv[2:], "--no-progress"]) == 0
    after = [r for r in metric_rows(wd / "metrics.jsonl") if r["step"] > 10]
    assert [r["step"] for r in after] == [20, 20]
    assert all(1000.0 < r["elapsed_s"] < 1000.0 + (r["time"] - kept[-1]["time"]) for r in after)
    acc = accumulator(wd)  # the header was written once, by the first start, not again by the resume
    assert len(acc.Tensors("config/text_summary")) == 1
    assert [i.step for i in acc.Images("mistakes")] == [10, 20]
