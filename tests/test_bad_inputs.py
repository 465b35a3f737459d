"""Every user mistake with a run's files or values (a damaged resolved.json, out-of-range or non-ASCII --set
values, workdir mistakes, missing files) gets one `jaxgen: error:` line, fast, before any compilation, and
changes nothing on disk."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MLP, snapshot_files

from jaxgen import cli, sinks
from jaxgen.errors import EXIT_USAGE

GOOD = TINY_MLP  # the shared tiny run's flags (hidden, steps first)


def _write(name: str, text: str):
    def setup(wd: Path) -> None:
        shutil.copytree(wd.parent / "done", wd)
        (wd / name).write_text(text)

    return setup


def _copy_done(wd: Path) -> None:
    shutil.copytree(wd.parent / "done", wd)


def _config_only(wd: Path) -> None:
    wd.mkdir()
    shutil.copy(wd.parent / "done" / "resolved.json", wd / "resolved.json")


def _a_file(wd: Path) -> None:
    wd.write_text("not a folder")


CFG = '"data": "embedded", "hidden": [16], "steps": 20, "ckpt_every": 10, "batch_size": 32'
BAD_INPUTS = [  # (setup of {wd}, argv, what the one line says)
    (_write("resolved.json", "{{{ not json"), ["train", "mlp", "--workdir", "{wd}", *GOOD], "not valid JSON"),
    (_write("resolved.json", ""), ["train", "mlp", "--workdir", "{wd}", *GOOD], "not valid JSON"),
    (
        _write("resolved.json", "[1, 2]"),
        ["train", "mlp", "--workdir", "{wd}", *GOOD],
        "must be a JSON object",
    ),
    (
        _write("resolved.json", '{"task": "mlp", ' + CFG.replace("20", '"many"') + "}"),
        ["train", "mlp", "--workdir", "{wd}", *GOOD],
        "steps must be an integer",
    ),
    (
        _write("resolved.json", '{"task": "mlp", "data": "embedded", "hidden": 16}'),
        ["train", "mlp", "--workdir", "{wd}", *GOOD],
        "hidden must be a comma list",
    ),
    (
        _write("resolved.json", '{"task": "diffusion", ' + CFG + "}"),
        ["train", "mlp", "--workdir", "{wd}", *GOOD],
        "names task 'diffusion'",
    ),
    (_write("resolved.json", '{"task": "mlp"}'), ["eval", "{wd}"], 'with "task" and "data"'),
    (_write("resolved.json", "garbage"), ["eval", "{wd}"], "not valid JSON"),
    (
        _write("resolved.json", '{"task": "mlp", ' + CFG.replace("20", "20.5") + "}"),
        ["sample", "{wd}", "--n", "4", "--out", "{wd}/x.npy"],
        "steps must be an integer",
    ),
    (
        None,
        ["train", "mlp", "--workdir", "{wd}", "--set", "steps=1e400"],
        "steps must be an integer below 2**31",
    ),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "steps=3e9"], "below 2**31"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "steps=٤٠٠"], "ASCII"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "lr=inf"], "lr must be a finite number"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "weight_decay=nan"], "finite number"),
    (None, ["train", "mlp", "--workdir", "", *GOOD], "--workdir is empty"),
    (
        _copy_done,
        ["train", "mlp", "--workdir", "{wd}", *GOOD[:2], "--set", "steps=10", *GOOD[4:]],
        "already at step 20, past steps=10",
    ),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "keep=0"], "keep must be a positive"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "keep_every=-5"], "keep_every must be >= 0"),
    (_a_file, ["train", "mlp", "--workdir", "{wd}", *GOOD], "is a file"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "nosuch=1"], "unknown key 'nosuch'"),
    (None, ["train", "gan", "--workdir", "{wd}", "--data", "toy:nope"], "unknown toy 'nope'"),
    (_config_only, ["eval", "{wd}"], "no readable checkpoint"),
    (None, ["eval", "{wd}"], "no resolved.json"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "hidden=abc"], "comma list of integers"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--set", "batch_size=0"], "batch_size must be a positive"),
    (None, ["train", "mlp", "--workdir", "{wd}", "--config", "{wd}.json"], "no such file"),
    (_copy_done, ["train", "ae", "--workdir", "{wd}"], "holds a mlp run, not ae"),
]


@pytest.fixture(scope="module")
def done_run(tmp_path_factory, tiny_runs) -> Path:
    """A folder holding `done`, a copy of the shared tiny mlp run (conftest.TINY_RUNS), beside the cases."""
    root = tmp_path_factory.mktemp("bad")
    shutil.copytree(tiny_runs("mlp"), root / "done")
    return root


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)), ids=[b[2][:40] for b in BAD_INPUTS])
def test_bad_files_and_values_get_one_line_fast_and_nothing_is_written(done_run, case, capsys):
    setup, argv, match = BAD_INPUTS[case]
    wd = done_run / f"case{case}"
    if setup is not None:
        setup(wd)
    before = snapshot_files(wd) if wd.is_dir() else (wd.read_bytes() if wd.exists() else None)
    capsys.readouterr()
    t0 = time.perf_counter()
    code = cli.main([a.replace("{wd}", str(wd)) for a in argv])
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == EXIT_USAGE and len(lines) == 1 and lines[0].startswith("jaxgen: error: "), err
    assert match in lines[0], lines[0]
    assert out == "" and seconds < 2.0, seconds
    after = snapshot_files(wd) if wd.is_dir() else (wd.read_bytes() if wd.exists() else None)
    assert after == before  # nothing written, nothing removed


def test_the_summary_is_strict_json():
    text = sinks.dumps({"a": float("nan"), "b": [1.0, float("inf")], "c": 2})
    assert text == '{"a": null, "b": [1.0, null], "c": 2}'
    np.testing.assert_equal(json.loads(sinks.dumps({"x": 0.5})), {"x": 0.5})
