"""The jaxgen command line: train -> eval -> plot on a tiny config, and user mistakes in one line."""

import json
import subprocess
import sys
import time

import pytest

from jaxgen import cli, tasks
from jaxgen.tasks import autoencoder

TINY = [
    "--set",
    "hidden=32",
    "--set",
    "steps=12",
    "--set",
    "batch_size=32",
    "--set",
    "ckpt_every=6",
    "--set",
    "log_every=6",
    "--set",
    "warmup_steps=0",
    "--set",
    "lr=0.01",
    "--no-progress",
]


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def only_json(out: str) -> dict:
    """stdout of a command that promises JSON: exactly one line, and it parses."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_train_eval_plot_end_to_end(tmp_path, capsys):
    wd = str(tmp_path / "run")
    assert cli.main(["train", "mlp", "--workdir", wd, *TINY]) == 0
    summary = only_json(capsys.readouterr().out)
    for key in ("task", "step", "num_devices", "wall_s", "samples_per_s"):
        assert key in summary
    assert summary["task"] == "mlp" and summary["step"] == 12
    for name in (
        "config.json",
        "env.json",
        "metrics.jsonl",
        "checkpoints/12",
        "plots/curves.png",
        "plots/predictions.png",
        "plots/confusion.png",
    ):
        assert (tmp_path / "run" / name).exists(), name
    assert list((tmp_path / "run" / "tb").glob("events.*")), "TensorBoard event file"

    assert cli.main(["eval", wd]) == 0
    ev = only_json(capsys.readouterr().out)
    assert ev["task"] == "mlp" and ev["step"] == 12 and ev["params_sha256"] == summary["params_sha256"]
    assert 0.3 < ev["accuracy"] <= 1 and ev["loss"] > 0 and ev["n"] == 500

    from conftest import MNIST_TEST5K

    if MNIST_TEST5K.exists():  # the real test digits beside the checkout, where there are any
        assert cli.main(["eval", wd, "--data", f"idx:{MNIST_TEST5K}"]) == 0
        ev5k = only_json(capsys.readouterr().out)
        assert ev5k["n"] == 5000 and ev5k["params_sha256"] == summary["params_sha256"]

    (tmp_path / "run" / "plots" / "curves.png").unlink()
    assert cli.main(["plot", wd]) == 0
    assert only_json(capsys.readouterr().out)["step"] == 12
    assert (tmp_path / "run" / "plots" / "curves.png").exists()

    # a run's config.json starts a new run (--set on top); the new run records the same config
    wd2 = str(tmp_path / "run2")
    config_json = str(tmp_path / "run" / "config.json")
    assert (
        cli.main(
            ["train", "mlp", "--workdir", wd2, "--config", config_json, "--set", "steps=6", "--no-plots"]
        )
        == 0
    )
    assert only_json(capsys.readouterr().out)["step"] == 6
    first, second = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("run", "run2"))
    assert {**first, "steps": 6} == second


@pytest.mark.parametrize("task", ["mlp", "ae", "gan"])
def test_train_help_lists_every_config_key_with_its_default(task, capsys):
    from jaxgen import config

    with pytest.raises(SystemExit) as done:
        cli.main(["train", task, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    cls = tasks.config_class(task)
    helps = config.field_help(cls)
    for key in config.fields(cls):
        line = next((x for x in out.splitlines() if x.split()[:1] == [key]), None)
        assert line is not None, f"{key} missing from jaxgen train {task} --help"
        assert helps.get(key), f"{key} has no comment in config.py: it is what --help shows"


def test_config_command_prints_defaults_as_json_and_version(capsys):

    assert cli.main(["config", "ae"]) == 0
    printed = only_json(capsys.readouterr().out)
    assert printed["task"] == "ae" and printed["latent_dim"] == autoencoder.AEConfig.latent_dim
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("jaxgen ")


def test_any_positive_steps_runs_with_default_warmup():

    for steps in (1, 5, 50, 2000):
        cfg = tasks.make_config("mlp", {"steps": steps})
        assert 0 <= cfg.warmup < steps


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "mlp", "--workdir", "{wd}", "--set", "nope=1"], "unknown key 'nope'"),
        (["train", "mlp", "--workdir", "{wd}", "--set", "lr=-1"], "lr must be > 0"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "toy:nope"], "toy"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "idx:/no/such/dir"], "/no/such/dir"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "foo"], "embedded"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "toy:gauss1d", *TINY], "two classes"),
        (["train", "ae", "--workdir", "{wd}", "--data", "toy:moons"], "toy"),
        (["train", "mlp", "--workdir", "{wd}", *TINY, "--set", "batch_size=100000"], "batch_size"),
        (["train", "cnn", "--workdir", "{wd}"], "invalid choice"),
        (["train", "mlp"], "--workdir"),
        (["eval", "{wd}"], "no resolved.json"),
        (["plot", "{wd}"], "no resolved.json"),
        (["backprop", "--iters", "0"], "--iters"),
        (["train", "mlp", "--workdir", "{wd}", "--config", "/no/such.json"], "no such file"),
        (["train", "ae", "--workdir", "{wd}", "--set", "latent_dim=0"], "latent_dim"),
        (["train", "gan", "--workdir", "{wd}", "--set", "d_steps=0"], "d_steps"),
        (["train", "gan", "--workdir", "{wd}", "--set", "loss=wasserstein"], "nonsaturating"),
        (["sample", "{wd}", "--out", "x.npy"], "no resolved.json"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_mistakes_get_one_line(tmp_path, capsys, argv, match):
    argv = [a.replace("{wd}", str(tmp_path / "wd")) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxgen: error: ") and "\n" not in err and "Traceback" not in err
    assert match in err
    assert not (tmp_path / "wd" / "checkpoints").exists()


def test_console_script_rejects_a_bad_flag_fast(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "jaxgen.cli", "train", "mlp", "--workdir", str(tmp_path), "--set", "stpes=5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "stpes" in proc.stderr
    assert time.perf_counter() - t0 < 30


def test_backprop_walkthrough_prints_the_published_numbers(capsys):
    assert cli.main(["backprop", "--iters", "10"]) == 0
    out = capsys.readouterr().out
    assert "0.298371109" in out and "0.35891648" in out


def test_full_mnist_recipe_route_trains_from_official_idx_file_names(tmp_path, capsys):
    """The README's full-MNIST route: the four official .gz IDX files in a folder, --data idx:DIR."""
    import numpy as np

    from jaxgen import data

    ds = data.load("embedded")
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, split in (("train", ds.train), ("t10k", ds.test)):
        data.write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", split["image"].reshape(-1, 28, 28))
        data.write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", split["label"].astype(np.uint8))
    wd = str(tmp_path / "run")
    assert cli.main(["train", "mlp", "--workdir", wd, "--data", f"idx:{folder}", *TINY, "--no-plots"]) == 0
    summary = only_json(capsys.readouterr().out)
    assert summary["test_n"] == 500 and summary["step"] == 12
