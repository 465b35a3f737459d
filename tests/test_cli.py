"""The jaxgen command line: train -> eval -> plot on a tiny config, and user mistakes in one line."""

import json
import subprocess
import sys
import time

import pytest

from jaxgen import cli

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


def test_train_eval_plot_end_to_end(tmp_path, capsys, mnist_test5k):
    wd = str(tmp_path / "run")
    assert cli.main(["train", "mlp", "--workdir", wd, *TINY]) == 0
    summary = last_json(capsys.readouterr().out)
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
    ev = last_json(capsys.readouterr().out)
    assert ev["task"] == "mlp" and ev["step"] == 12 and ev["params_sha256"] == summary["params_sha256"]
    assert 0.3 < ev["accuracy"] <= 1 and ev["loss"] > 0 and ev["n"] == 500

    assert cli.main(["eval", wd, "--data", f"idx:{mnist_test5k}"]) == 0
    ev5k = last_json(capsys.readouterr().out)
    assert ev5k["n"] == 5000 and ev5k["params_sha256"] == summary["params_sha256"]

    (tmp_path / "run" / "plots" / "curves.png").unlink()
    assert cli.main(["plot", wd]) == 0
    assert (tmp_path / "run" / "plots" / "curves.png").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "mlp", "--workdir", "{wd}", "--set", "nope=1"], "unknown key 'nope'"),
        (["train", "mlp", "--workdir", "{wd}", "--set", "lr=-1"], "lr must be > 0"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "toy:nope"], "toy"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "idx:/no/such/dir"], "/no/such/dir"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "foo"], "embedded"),
        (["train", "mlp", "--workdir", "{wd}", "--data", "toy:ring8", *TINY], "toy"),
        (["train", "mlp", "--workdir", "{wd}", *TINY, "--set", "batch_size=100000"], "batch_size"),
        (["train", "cnn", "--workdir", "{wd}"], "invalid choice"),
        (["train", "mlp"], "--workdir"),
        (["eval", "{wd}"], "no config.json"),
        (["plot", "{wd}"], "no config.json"),
        (["backprop", "--iters", "0"], "--iters"),
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


def test_a_different_config_in_the_same_workdir_is_refused_and_loses_nothing(tmp_path, capsys):
    wd = str(tmp_path / "run")
    assert cli.main(["train", "mlp", "--workdir", wd, *TINY, "--no-plots"]) == 0
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert cli.main(["train", "mlp", "--workdir", wd, *TINY, "--set", "lr=0.5"]) == 2
    assert "lr=0.01" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before
    assert (tmp_path / "run" / "checkpoints" / "12").exists()


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
