"""Retention by a validation score (keep_best) and early stopping (patience): what stays on disk, when the
run ends, and both surviving SIGKILL bit for bit (keep and keep_every: test_longrun.py's
test_keep_the_last_n_plus_periodic_keepers)."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_longrun import MLP, cfg_of, cpu_only, metric_lines, spawn, straight, wait_for

from jaxgen import checkpoint, cli, train
from jaxgen.errors import EXIT_USAGE
from jaxgen.retention import Best

# Tiny MLP, 500 validation images, a checkpoint every 4 steps: val accuracy peaks before the end.
KEEP_BEST = dict(MLP, steps=40, ckpt_every=4, log_every=4, val=500, keep=1, keep_best=1)
# A learning rate high enough that the 100 validation images stop improving well before 120 steps.
PATIENCE = dict(MLP, steps=120, ckpt_every=4, log_every=4, val=100, lr=0.03, patience=2)


def kept(workdir: Path) -> list[int]:
    return checkpoint.step_dirs(workdir / "checkpoints")


def saved(workdir: Path, step: int, item: str) -> dict:
    """Checkpoint `step`'s JSON item: its meta record, or the metrics orbax ranks it by."""
    return json.loads(
        (workdir / "checkpoints" / str(step) / item / {"meta": "metadata"}.get(item, item)).read_text()
    )


def val_scores(workdir: Path, metric: str = "val/accuracy") -> dict[int, float]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[metric] for r in rows if metric in r}


def killed_and_rerun(tmp_path: Path, cfg, spec: str, checkpoints: int) -> tuple[Path, dict]:
    """SIGKILL a subprocess after `checkpoints` validation rows, then rerun the command here."""
    wd = tmp_path / "killed"
    proc = spawn("mlp", cfg, spec, wd)
    assert wait_for(proc, lambda: metric_lines(wd) >= 3 * checkpoints + 1), "finished before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    return wd, train.train(cfg, wd, spec, progress=False, make_plots=False)


def test_keep_best_keeps_the_newest_and_the_best_and_survives_a_kill(tmp_path, capsys):
    cpu_only()
    cfg, spec = cfg_of("mlp", KEEP_BEST)
    ref = straight(tmp_path, "mlp", cfg, spec)
    scores = val_scores(tmp_path / "straight")
    best = max(scores, key=lambda s: (scores[s], -s))  # ties: the earlier checkpoint
    assert best != 40, "the config must peak before its last checkpoint for this test to mean anything"
    assert kept(tmp_path / "straight") == [best, 40]
    assert (ref["best_step"], ref["best_value"], ref["stopped_early"]) == (best, scores[best], False)
    # the score travels with the checkpoint (orbax's metrics), and eval finds the best one by it
    assert saved(tmp_path / "straight", best, "metrics") == {"val/accuracy": scores[best], "step": best}
    capsys.readouterr()
    assert cli.main(["eval", str(tmp_path / "straight"), "--checkpoint", "best"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == best

    wd, again = killed_and_rerun(tmp_path, cfg, spec, checkpoints=4)
    assert again["resumed_from"] and again["params_sha256"] == ref["params_sha256"]
    assert kept(wd) == kept(tmp_path / "straight")
    assert val_scores(wd) == scores
    assert (again["best_step"], again["best_value"]) == (ref["best_step"], ref["best_value"])


def test_patience_stops_early_and_a_rerun_neither_trains_nor_changes_anything(tmp_path, capsys):
    cpu_only()
    cfg, spec = cfg_of("mlp", PATIENCE)
    capsys.readouterr()
    ref = straight(tmp_path, "mlp", cfg, spec)
    note = [line for line in capsys.readouterr().err.splitlines() if line.startswith("stopped early")]
    assert ref["stopped_early"] and ref["step"] < cfg.steps and len(note) == 1
    scores = val_scores(tmp_path / "straight")
    # the last `patience` checkpoints are the only ones since the best that did not beat it
    steps = sorted(scores)
    assert steps[-1] == ref["step"] and ref["best_step"] == steps[-3]
    assert all(scores[s] <= ref["best_value"] for s in steps[-2:])
    record = {"metric": "val/accuracy", "best_value": ref["best_value"], "best_step": ref["best_step"]}
    assert saved(tmp_path / "straight", ref["step"], "meta")["best"] == {**record, "bad_checks": 2}

    # the same command again: resumes at the stop, trains nothing, says the same
    before = (tmp_path / "straight" / "metrics.jsonl").read_text()
    rerun = straight(tmp_path, "mlp", cfg, spec)
    assert (rerun["step"], rerun["resumed_from"], rerun["stopped_early"]) == (ref["step"], ref["step"], True)
    assert rerun["params_sha256"] == ref["params_sha256"]
    assert (tmp_path / "straight" / "metrics.jsonl").read_text() == before
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("stopped early")] == note

    # killed part-way and rerun: stops at the same step with the same parameters
    wd, again = killed_and_rerun(tmp_path, cfg, spec, checkpoints=3)
    assert (again["step"], again["stopped_early"], again["params_sha256"]) == (
        ref["step"],
        True,
        ref["params_sha256"],
    )
    assert saved(wd, ref["step"], "meta")["best"] == {**record, "bad_checks": 2}
    assert kept(wd) == kept(tmp_path / "straight")


@pytest.mark.parametrize(
    "sets, message",
    [
        (
            ["keep_best=1"],
            r"keep_best ranks checkpoints .*best_metric=val/accuracy:max\) and val=0 .*: add --set val=",
        ),
        (
            ["patience=3"],
            r"patience ranks checkpoints .*best_metric=val/accuracy:max\) and val=0 .*: add --set val=",
        ),
        (["val=100", "best_metric=accuracy"], "best_metric must be val/KEY:max or val/KEY:min"),
        (["val=100", "keep_best=1", "best_metric=val/acc:max"], "gives no 'acc'; it gives accuracy, "),
        (["val=100", "min_delta=-1"], "min_delta must be >= 0"),
    ],
)
def test_a_ranking_without_a_validation_score_is_one_line(sets, message, tmp_path, capsys):
    wd = tmp_path / "run"
    code = cli.main(["train", "mlp", "--workdir", str(wd), *(a for s in sets for a in ("--set", s))])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE and len(err) == 1
    assert re.search(message, err[0]), err[0]
    assert not (wd / "checkpoints").exists()


@pytest.mark.parametrize(
    "name, extra",
    [
        ("mlp", {}),
        ("gan", {"loss": "hinge"}),
        pytest.param("ae", {"variational": True}, marks=pytest.mark.slow),
    ],
)
def test_the_scores_a_config_names_are_those_its_task_evaluates(name, extra):
    """check_scores (keep_best, patience: before anything compiles) reads the config's list of validation
    scores: every one of them is a key of the task's evaluate."""
    import jax

    from jaxgen import configs, runtime, tasks

    cls = tasks.TASKS[name][0]
    cfg = tasks.make_config(name, {**cls.TINY, **extra, "val": 200})
    ds = configs.data_for(cfg, cls.TINY_DATA)
    task = tasks.build(tasks.resolve(cfg, ds), ds)
    params = jax.device_get(jax.jit(task.init)(jax.random.key(0)).params)
    scores = task.evaluate(params, ds.val, runtime.eval_key(0))
    assert set(cfg.val_scores(ds)) <= set(scores) and cfg.best_metric.split(":")[0][4:] in scores


def test_best_counts_gains_above_min_delta_and_never_a_nan():
    best = Best("val/loss", higher=False, min_delta=0.1, patience=2)
    for step, value in [(1, 1.0), (2, 0.95), (3, float("nan"))]:
        best.update(step, value)
    # 0.95 is the best (any gain), but no gain above min_delta since step 1; NaN never improves
    assert (best.value, best.step, best.bad_checks, best.stopped) == (0.95, 2, 2, True)
    best.update(4, 0.8)
    assert (best.value, best.step, best.bad_checks, best.stopped) == (0.8, 4, 0, False)
    again = Best("val/loss", higher=False)
    again.load({"best": best.record()})
    assert (again.value, again.step, again.bad_checks) == (0.8, 4, 0)
    # orbax ranks saved metrics by: the better score, then the earlier step; unscored last
    assert best.rank({"val/loss": 0.5, "step": 8}) > best.rank({"val/loss": 0.5, "step": 12})
    assert best.rank({"val/loss": 0.4, "step": 12}) > best.rank({"val/loss": 0.5, "step": 8})
    assert best.rank({}) == best.rank({"val/loss": math.nan}) < best.rank({"val/loss": 9.0, "step": 1})


def test_retention_uses_orbax_preservation_policies_without_deprecated_options(tmp_path, caplog):
    """keep / keep_every / keep_best become orbax's preservation policy: no max_to_keep or keep_period
    (deprecated in orbax 0.12), and nothing orbax says about deprecation while saving and reading."""
    import jax.numpy as jnp

    from jaxgen.tasks.base import State

    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        best = Best("val/accuracy", higher=True)
        ckpt = checkpoint.Checkpointer(tmp_path, keep=1, keep_every=4, keep_best=1, best=best)
        options = ckpt.manager._options
        assert options.max_to_keep is None and options.keep_period is None
        for step, score in [(2, 0.5), (4, 0.4), (6, 0.7), (8, 0.6), (10, 0.65)]:
            state = State(step=jnp.int32(step), params={"w": jnp.full((3,), step, jnp.float32)}, opt_state=())
            ckpt.save(step, state, score)
        ckpt.close()
        reader = checkpoint.Checkpointer(tmp_path, writer=False)
        steps = reader.steps()
        reader.close()
    assert steps == [4, 6, 8, 10]  # newest 1, every multiple of 4, best 1 (0.7 at 6)
    said = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [s for s in said if "deprecat" in s.lower() or "max_to_keep" in s or "keep_period" in s], said


@pytest.mark.slow  # make test leaves it out: docs/testing.md (two processes through jax.distributed)
def test_two_processes_rank_and_stop_alike(tmp_path):
    """Process 0 alone evaluates; its score reaches the other process, so both keep the same checkpoints
    and stop at the same step."""
    import socket

    from test_longrun import sets

    cfg, _ = cfg_of("mlp", PATIENCE, keep=1, keep_best=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "jaxgen.cli", "train", "mlp", "--workdir", str(tmp_path / "mp"), *sets(cfg)]
    argv += ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    pipe = subprocess.PIPE
    procs = [subprocess.Popen([*argv, str(i)], stdout=pipe, stderr=pipe, text=True, env=env) for i in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    s0, s1 = (json.loads(out.splitlines()[-1]) for out, _ in outs)
    keys = ("step", "stopped_early", "best_step", "best_value", "params_sha256")
    assert [s0[k] for k in keys] == [s1[k] for k in keys] and s0["stopped_early"]
    assert kept(tmp_path / "mp") == [s0["best_step"], s0["step"]]
