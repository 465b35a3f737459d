"""Long runs that lose nothing: kills at random moments and inside saves, bad checkpoints, divergence,
readers beside a writer, a second writer (read-only and full disks: test_disk.py; bad files and values:
test_bad_inputs.py).

Processes that must die are real subprocesses (`python -m jaxgen.cli`); the rest runs in-process.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
import pytest
from conftest import snapshot_files

from jaxgen import checkpoint, chunks, cli, config, data, runs, tasks, train
from jaxgen.errors import EXIT_DIVERGED, EXIT_INTERRUPTED, UserError
from jaxgen.sinks import CLOCK_KEYS
from jaxgen.tasks import TASKS
from jaxgen.tasks.classifier import Classifier

MLP = {"hidden": (16,), "batch_size": 32, "warmup_steps": 2, "ckpt_every": 10, "log_every": 5}


def cfg_of(name: str, base: dict | None = None, **kw):
    cls = TASKS[name][0]
    kw = {**(base or {}), **kw}
    return tasks.make_config(name, {**cls.TINY, **kw}), cls.TINY_DATA


def sets(cfg) -> list[str]:
    """`--set` flags that rebuild `cfg` (every field its architecture reads, so the subprocess runs exactly
    this config; None is left for the data, as in `cfg`)."""
    out = []
    for k, v in config.to_dict(cfg).items():
        if v is None or not cfg.applies(k):
            continue
        value = ",".join(map(str, v)) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v
        out += ["--set", f"{k}={value}"]
    return out


def straight(tmp_path: Path, name: str, cfg, spec: str, folder: str = "straight") -> dict:
    return train.train(cfg, tmp_path / folder, spec, progress=False, make_plots=False)


def cpu_only() -> None:
    """The killed and looping runs are subprocesses pinned to the CPU (spawn), compared bit for bit with a
    reference trained in this process: only the same backend can match (gradient norms alone are sampled
    every 10th step on the CPU, every step elsewhere)."""
    if jax.default_backend() != "cpu":
        pytest.skip("compares CPU subprocesses with an in-process run: meaningful on the CPU backend only")


def spawn(name: str, cfg, spec: str, workdir: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "jaxgen.cli", "train", name, "--workdir", str(workdir), "--data", spec]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        [*argv, *sets(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for(proc: subprocess.Popen, ready, timeout: float = 120.0) -> bool:
    """Poll `ready()` every ~0.5 ms until it holds (True) or the process ends (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    raise TimeoutError("the trainer never reached the moment to kill it")


def metric_lines(workdir: Path) -> int:
    path = workdir / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def logged(workdir: Path) -> list[dict]:
    """metrics.jsonl's rows, every line whole (a cut one fails to parse), without the keys that time them
    (they differ from run to run; the metrics must not)."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in CLOCK_KEYS} for line in lines]


def saving(workdir: Path) -> bool:
    """A checkpoint is being written right now (orbax's temporary folder exists)."""
    with contextlib.suppress(FileNotFoundError):
        return any("tmp" in e.name for e in os.scandir(workdir / "checkpoints"))
    return False


def tb_scalars(workdir: Path) -> dict[str, list[int]]:
    """tag -> steps, as TensorBoard shows them: files in name order; a SessionLog START at step s (what
    jaxgen writes first in each segment, s = resumed step + 1) purges every earlier event at step >= s."""
    from tensorboardX.proto import event_pb2

    seen: dict[str, list[int]] = {}
    for path in sorted((workdir / "tb").glob("events.out.tfevents.*")):
        blob, pos = path.read_bytes(), 0
        while pos + 12 <= len(blob):
            (n,) = struct.unpack("<Q", blob[pos : pos + 8])
            if pos + 12 + n + 4 > len(blob):
                break  # a record cut short
            event = event_pb2.Event.FromString(blob[pos + 12 : pos + 12 + n])
            pos += 12 + n + 4
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                seen = {tag: [s for s in steps if s < event.step] for tag, steps in seen.items()}
            for value in event.summary.value:
                seen.setdefault(value.tag, []).append(event.step)
    return seen


# ---------------------------------------------------------------- kills


# The kill-and-resume machinery is the driver's, the same for every task (each task's own resume is pinned
# bit for bit by test_tasks.py::test_task_contract); the ae and gan runs of it are in `pytest -m slow`.
@pytest.mark.parametrize(
    "name", [n if n == "mlp" else pytest.param(n, marks=pytest.mark.slow) for n in sorted(TASKS)]
)
def test_killed_at_random_moments_and_inside_saves_then_rerun_is_bit_identical(name, tmp_path, capsys):
    cpu_only()
    cfg, spec = cfg_of(name, steps=48, ckpt_every=6, log_every=3)
    ref = straight(tmp_path, name, cfg, spec)
    wd = tmp_path / "killed"
    rng = random.Random(sum(map(ord, name)))
    kills = [("a random moment", signal.SIGKILL), ("inside a save", signal.SIGKILL)]
    if name == "mlp":
        kills.append(("a random moment", signal.SIGTERM))
    for moment, sig in kills:
        proc = spawn(name, cfg, spec, wd)
        if moment == "inside a save":
            # a save past the first one, so the rerun has a finished checkpoint to resume from
            ready = lambda: saving(wd) and checkpoint.step_dirs(wd / "checkpoints")  # noqa: E731
        else:
            target = metric_lines(wd) + rng.randint(3, 8)
            ready = lambda target=target: metric_lines(wd) >= target  # noqa: E731
        assert wait_for(proc, ready), f"{name} finished before it could be killed at {moment}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:  # finishes its chunk, saves, says so, exits with the resumable status
            assert proc.returncode == EXIT_INTERRUPTED, err
            assert "interrupted at step" in err.splitlines()[-1]
    again = train.train(cfg, wd, spec, progress=False, make_plots=False)
    assert again["resumed_from"], capsys.readouterr().err
    assert again["params_sha256"] == ref["params_sha256"]
    assert logged(wd) == logged(tmp_path / "straight")
    got, want = tb_scalars(wd), tb_scalars(tmp_path / "straight")
    assert got == want and all(len(set(s)) == len(s) for s in got.values())
    starts = json.loads((wd / "env.json").read_text())["starts"]
    assert len(starts) == len(kills) + 1 and all("argv" in s and "data_sha256" in s for s in starts)


# ---------------------------------------------------------------- bad checkpoints


def _flip_a_byte(ckpt_dir: Path) -> None:
    data_files = [p for p in (ckpt_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    biggest = max(data_files, key=lambda p: p.stat().st_size)
    blob = bytearray(biggest.read_bytes())
    blob[len(blob) * 3 // 4] ^= 0x10
    biggest.write_bytes(bytes(blob))


def _truncate(ckpt_dir: Path) -> None:
    for p in (ckpt_dir / "state").rglob("*"):
        if p.is_file() and p.parent.name == "d":
            p.write_bytes(p.read_bytes()[:100])


CORRUPTIONS = {
    "flipped byte": _flip_a_byte,
    "truncated": _truncate,
    "checksum record removed": lambda d: shutil.rmtree(d / "meta"),
    "array metadata removed": lambda d: (d / "state" / "_METADATA").unlink(),
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_a_bad_newest_checkpoint_is_set_aside_and_the_run_finishes_bit_identical(how, tmp_path, capsys):
    cfg, spec = cfg_of("mlp", MLP, steps=30)
    ref = straight(tmp_path, "mlp", cfg, spec)
    wd = tmp_path / "bad"
    shutil.copytree(tmp_path / "straight", wd)
    shutil.rmtree(wd / "checkpoints" / "30")  # as if killed after saving 20
    CORRUPTIONS[how](wd / "checkpoints" / "20")
    capsys.readouterr()
    out = train.train(cfg, wd, spec, progress=False, make_plots=False)
    err = capsys.readouterr().err
    assert "checkpoint 20 is" in err and "set aside" in err and "resuming from step 10" in err
    assert out["params_sha256"] == ref["params_sha256"] and out["resumed_from"] == 10
    assert (wd / checkpoint.SET_ASIDE / "20").is_dir()  # kept for a post-mortem, not deleted
    assert logged(wd) == logged(tmp_path / "straight")


def test_a_changed_optimizer_state_fails_the_whole_state_checksum(tmp_path, capsys):
    """Bytes of the Adam moments changed on disk while the parameters are intact: caught, not resumed."""
    cfg, spec = cfg_of("mlp", MLP, steps=20)
    straight(tmp_path, "mlp", cfg, spec)
    wd = tmp_path / "straight"
    _, state, _, _, _, *_ = runs.restore_for_eval(wd)
    meta = json.loads((wd / "checkpoints" / "20" / "meta" / "metadata").read_text())
    poisoned = state.replace(opt_state=jax.tree.map(lambda x: x * 1.5 if x.ndim else x, state.opt_state))
    assert checkpoint.params_sha256(poisoned.params) == meta["params_sha256"]
    shutil.rmtree(wd / "checkpoints" / "20")
    ckpt = checkpoint.Checkpointer(wd)
    ckpt.manager.save(  # the old checksum record beside a changed optimizer state
        20, args=ocp.args.Composite(state=ocp.args.StandardSave(poisoned), meta=ocp.args.JsonSave(meta))
    )
    ckpt.manager.wait_until_finished()
    ckpt.close()
    _, _, step, _, _, *_ = runs.restore_for_eval(wd)
    assert step == 10
    assert "checkpoint 20 is failing its state checksum" in capsys.readouterr().err


def test_when_no_checkpoint_is_readable_the_run_stops_and_nothing_changes(tmp_path):
    cfg, spec = cfg_of("mlp", MLP, steps=20)
    straight(tmp_path, "mlp", cfg, spec)
    wd = tmp_path / "straight"
    for step in (10, 20):
        _truncate(wd / "checkpoints" / str(step))
    before = snapshot_files(wd)
    with pytest.raises(UserError, match="none of the 2 checkpoints .* is readable .*nothing was changed"):
        train.train(cfg, wd, spec, progress=False, make_plots=False)
    after = snapshot_files(wd)
    after.pop("env.json")  # the start is recorded (history), nothing else moves
    before.pop("env.json")
    assert after == before


def test_killed_before_the_first_checkpoint_restarts_with_clean_logs(tmp_path):
    cfg, spec = cfg_of("mlp", MLP, steps=20)
    straight(tmp_path, "mlp", cfg, spec)
    wd = tmp_path / "early"
    shutil.copytree(tmp_path / "straight", wd)
    shutil.rmtree(wd / "checkpoints")
    with open(wd / "metrics.jsonl", "a") as f:
        f.write('{"step": 25, "train/lo')  # and a line cut short by the kill
    out = train.train(cfg, wd, spec, progress=False, make_plots=False)
    assert out["resumed_from"] is None
    assert logged(wd) == logged(tmp_path / "straight")
    assert tb_scalars(wd) == tb_scalars(tmp_path / "straight")


def test_a_partial_last_metrics_line_does_not_block_resuming(tmp_path):
    cfg, spec = cfg_of("mlp", MLP, steps=30)
    straight(tmp_path, "mlp", cfg, spec)
    wd = tmp_path / "cut"
    shutil.copytree(tmp_path / "straight", wd)
    shutil.rmtree(wd / "checkpoints" / "30")
    with open(wd / "metrics.jsonl", "a") as f:
        f.write('{"step": 35, "train/accur')
    assert cli.main(["plot", str(wd)]) == 0  # a reader of the killed run's logs too
    train.train(cfg, wd, spec, progress=False, make_plots=False)
    assert logged(wd) == logged(tmp_path / "straight")


def test_keep_the_last_n_plus_periodic_keepers(tmp_path):
    cfg, spec = cfg_of("mlp", MLP, steps=60, keep=2, keep_every=20)
    straight(tmp_path, "mlp", cfg, spec)
    assert sorted(int(p.name) for p in (tmp_path / "straight" / "checkpoints").iterdir()) == [20, 40, 50, 60]


# ---------------------------------------------------------------- divergence


def _nonfinite_on_disk(wd: Path) -> list[int]:
    """Steps of checkpoints on disk holding a NaN or infinity anywhere in the state."""
    bad = []
    ckpt = checkpoint.Checkpointer(wd, writer=False)
    cfg, spec = cfg_of("mlp", MLP)
    abstract = jax.eval_shape(tasks.build(cfg, data.load(spec)).init, jax.random.key(0))
    for step in ckpt.steps():
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        if not bool(chunks.all_finite(ckpt.manager.restore(step, args=args)["state"])):
            bad.append(step)
    ckpt.close()
    return bad


def test_injected_divergence_stops_and_never_saves_a_nonfinite_state(tmp_path, monkeypatch, capsys):
    real_step = Classifier.step

    def poisoned(self, state, batch, key):  # from step 12 on, one parameter becomes NaN
        new, metrics = real_step(self, state, batch, key)
        bias = new.params["params"]["out"]["bias"]
        bias = jnp.where(state.step >= 12, bias.at[0].set(jnp.nan), bias)
        params = {"params": {**new.params["params"], "out": {**new.params["params"]["out"], "bias": bias}}}
        return new.replace(params=params), metrics

    monkeypatch.setattr(Classifier, "step", poisoned)
    cfg, spec = cfg_of("mlp", MLP, steps=40, ckpt_every=5)
    code = cli.main(["train", "mlp", "--workdir", str(tmp_path / "d"), *sets(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_DIVERGED
    assert "after step 15" in err[-1] and "checkpoint 10 is the last good one" in err[-1]
    assert sorted(int(p.name) for p in (tmp_path / "d" / "checkpoints").iterdir()) == [5, 10]
    assert _nonfinite_on_disk(tmp_path / "d") == []
    rows = [json.loads(line) for line in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
    assert rows  # strict JSON throughout (NaN written as null)


def test_a_huge_learning_rate_diverges_with_a_message_not_nan_checkpoints(tmp_path, capsys):
    cfg, spec = cfg_of("mlp", MLP, steps=40, lr=1e6)
    code = cli.main(["train", "mlp", "--workdir", str(tmp_path / "d"), *sets(cfg)])
    assert code == EXIT_DIVERGED
    assert "diverged" in capsys.readouterr().err
    assert _nonfinite_on_disk(tmp_path / "d") == []


# ---------------------------------------------------------------- readers and writers


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_eval_looping_beside_a_trainer_leaves_it_unaffected(tmp_path, capsys):
    cpu_only()
    cfg, spec = cfg_of("mlp", MLP, steps=60, ckpt_every=2, log_every=2)
    ref = straight(tmp_path, "mlp", cfg, spec)
    wd = tmp_path / "live"
    proc = spawn("mlp", cfg, spec, wd)
    evals = 0
    while proc.poll() is None:
        if (wd / "checkpoints").is_dir() and cli.main(["eval", str(wd)]) == 0:
            evals += 1
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert evals >= 2
    assert json.loads(out.strip().splitlines()[-1])["params_sha256"] == ref["params_sha256"]


def test_a_second_writer_is_refused_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    cfg, spec = cfg_of("mlp", MLP, steps=4000, ckpt_every=10, log_every=10)
    wd = tmp_path / "busy"
    proc = spawn("mlp", cfg, spec, wd)
    try:
        assert wait_for(proc, lambda: metric_lines(wd) >= 1)
        before = snapshot_files(wd, contents=False)
        with pytest.raises(UserError, match=f"being trained by process {proc.pid} "):
            train.train(cfg, wd, spec, progress=False, make_plots=False)
        assert set(snapshot_files(wd, contents=False)) <= set(before) | {
            k for k in snapshot_files(wd, contents=False) if k.startswith(("checkpoints", "tb", "samples"))
        }
    finally:
        proc.kill()
        proc.wait()
    assert (wd / runs.LOCK).read_text().startswith(f"{proc.pid} ")  # left behind by the SIGKILL
    on_disk = checkpoint.step_dirs(wd / "checkpoints")
    shorter = tasks.make_config(
        "mlp", {**MLP, "hidden": (16,), "steps": (on_disk[-1] if on_disk else 0) + 10}
    )
    capsys.readouterr()
    out = train.train(shorter, wd, spec, progress=False, make_plots=False)
    assert f"taking over the stale lock of process {proc.pid}" in capsys.readouterr().err
    assert out["step"] == shorter.steps and (wd / runs.LOCK).read_text() == ""
