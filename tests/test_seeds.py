"""Several seeds in one run (`jaxgen train TASK --seeds 0,1,2`): each seed an ordinary run equal to its
single-seed run, a summary with mean and std, kill -9 and partial saves resumed like any run."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TINY_MLP

from jaxgen import cli
from jaxgen.checkpoint import Checkpointer
from jaxgen.errors import UserError
from jaxgen.seeds import parse_seeds


def train(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["train", "mlp", *argv, "--no-progress", "--no-plots"]) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_seed_lists_and_flags_that_cannot_work_are_one_line(tmp_path, capsys):
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5,9") == [3, 4, 5, 9]
    assert parse_seeds("7") == [7]  # a group of one
    for bad, words in [("0,x", "integers"), ("1,1", "twice"), ("0-64", "at most 64"), ("5-3", "backwards")]:
        with pytest.raises(UserError, match=words):
            parse_seeds(bad)
    cases = [
        (["--seeds", "0,1", "--set", "seed=3"], "drop --set seed"),
        (["--seeds-mode", "unroll"], "applies to --seeds"),
        (["--seeds", "0,1", "--distributed"], "one process"),
    ]
    for argv, words in cases:
        assert cli.main(["train", "mlp", "--workdir", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.fixture(scope="module")
def unrolled(tmp_path_factory):
    wd = tmp_path_factory.mktemp("seeds") / "unroll"
    return wd, train("--workdir", str(wd), "--seeds", "0,1", "--seeds-mode", "unroll", *TINY_MLP)


def test_unrolled_seeds_are_their_single_runs_bit_for_bit(unrolled, tiny_runs):
    wd, summary = unrolled
    single = json.loads((tiny_runs("mlp").parent / "summary.json").read_text())  # seed 0, the same flags
    assert summary["seeds"] == [0, 1] and summary["step"] == 20
    assert summary["runs"][0]["params_sha256"] == single["params_sha256"]
    assert summary["runs"][0]["params_sha256"] != summary["runs"][1]["params_sha256"]
    acc = [r["test_accuracy"] for r in summary["runs"]]
    assert summary["headline"]["test_accuracy"]["mean"] == pytest.approx(np.mean(acc), abs=1e-6)
    assert summary["headline"]["test_accuracy"]["std"] == pytest.approx(np.std(acc, ddof=1), abs=1e-6)
    assert json.loads((wd / "seeds.json").read_text())["headline"] == summary["headline"]
    # each seed is an ordinary run: its record names its seed, eval reads it as any run
    assert json.loads((wd / "seed-1" / "resolved.json").read_text())["seed"] == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["eval", str(wd / "seed-1")]) == 0
    assert json.loads(out.getvalue())["params_sha256"] == summary["runs"][1]["params_sha256"]


def test_vmapped_seeds_equal_their_single_runs_to_float_rounding(tmp_path, tiny_runs, unrolled):
    from jaxgen.runs import restore_for_eval

    summary = train("--workdir", str(tmp_path / "vmap"), "--seeds", "0,1", *TINY_MLP)
    assert summary["mode"] == "vmap"
    for i in (0, 1):
        a = restore_for_eval(tmp_path / "vmap" / f"seed-{i}").state.params
        b = restore_for_eval(unrolled[0] / f"seed-{i}").state.params
        for x, y in zip(jax_leaves(a), jax_leaves(b), strict=True):
            np.testing.assert_allclose(x, y, atol=2e-5)  # batched matmuls: another summation order
    assert abs(summary["runs"][1]["test_accuracy"] - unrolled[1]["runs"][1]["test_accuracy"]) <= 0.004


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_a_kill_between_the_seeds_saves_resumes_every_seed_from_the_common_step(unrolled, tmp_path, capsys):
    src, summary = unrolled
    wd = tmp_path / "partial"
    shutil.copytree(src, wd)
    shutil.rmtree(wd / "seed-1" / "checkpoints" / "20")  # seed 0 had saved step 20, seed 1 not yet
    again = train("--workdir", str(wd), "--seeds", "0,1", "--seeds-mode", "unroll", *TINY_MLP)
    err = capsys.readouterr().err
    assert "ahead of the other seeds" in err and (wd / "seed-0" / "checkpoints-set-aside" / "20").is_dir()
    assert again["resumed_from"] == 10
    assert [r["params_sha256"] for r in again["runs"]] == [r["params_sha256"] for r in summary["runs"]]
    with pytest.raises(SystemExit):  # another seed list in the same folder: one line naming the fix
        raise SystemExit(cli.main(["train", "mlp", "--workdir", str(wd), "--seeds", "0,2", *TINY_MLP]))
    assert "rerun with --seeds 0,1" in capsys.readouterr().err


def test_killed_at_a_random_moment_the_seeds_resume_bit_identical(tmp_path):
    flags = [*TINY_MLP[:2], "--set", "steps=200", *TINY_MLP[4:], "--seeds", "2,3", "--seeds-mode", "unroll"]
    straight = train("--workdir", str(tmp_path / "straight"), *flags)
    wd = tmp_path / "killed"
    cmd = [sys.executable, "-m", "jaxgen.cli", "train", "mlp", "--workdir", str(wd), *flags, "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    metrics = wd / "seed-3" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    again = train("--workdir", str(wd), *flags)
    assert [r["params_sha256"] for r in again["runs"]] == [r["params_sha256"] for r in straight["runs"]]
    for seed in (2, 3):  # one row per logged step: nothing doubled by the resume
        rows = (wd / f"seed-{seed}" / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(x)["step"] for x in rows if "train/loss" in x]
        assert steps == sorted(set(steps)) and steps[-1] == 200
        ckpt = Checkpointer(wd / f"seed-{seed}", writer=False)
        assert ckpt.steps()[-1] == 200
        ckpt.close()
