"""The one training driver every task uses: compiled chunks of steps, one host sync each, checkpoints, resume.

A run is a pure function of (config, seed): key -> (init, data, loop) keys; the batch of step s is
`batches.batch_at(train, data_key, s)` and its randomness `fold_in(loop_key, s)`, so stopping and resuming
reproduces the straight run. Batches are sharded over a 1-D device mesh ("data"); params are replicated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import config as config_lib
from jaxgen import runs
from jaxgen.checkpoint import Checkpointer, params_sha256
from jaxgen.chunks import compile_chunk, place
from jaxgen.data import batches
from jaxgen.errors import Diverged, Interrupted, UserError
from jaxgen.retention import Best
from jaxgen.runs import Plan, plan
from jaxgen.runtime import (
    device_name,
    env_info,
    eval_key,
    from_process_0,
    is_main_process,
    precision_scope,
    preemption_service,
)
from jaxgen.sinks import CLOCK_KEYS, Progress, Sinks, metric_rows, truncate_metrics
from jaxgen.tasks.base import State, Task, chunk_means, headline_tags

# ---------------------------------------------------------------- the driver


def train(
    cfg: config_lib.TrainConfig,
    workdir: str | Path,
    spec: str = "embedded",
    *,
    progress: bool = True,
    make_plots: bool = True,
) -> dict[str, Any]:
    """Train (or resume) the run of `cfg` (its class names the task) in `workdir`; returns the summary
    that the CLI prints as JSON. Everything the user can get wrong is checked (`plan`) before anything is
    written or compiled."""
    t_start = time.perf_counter()
    p = plan(cfg, workdir, spec)
    main = is_main_process()
    lock = runs.WorkdirLock(p.run_dir) if main else None
    with precision_scope(p.cfg.precision):
        try:
            p.run_dir.mkdir(parents=True, exist_ok=True)
            if lock is not None:
                lock.acquire()
            if main:
                runs.write_configs(p)
                runs.record_start(p.run_dir, env_info(p.data["train"]))
            return _train_locked(p, progress=progress, make_plots=make_plots, t_start=t_start)
        except OSError as err:
            raise runs.os_error(err, p.run_dir) from None
        finally:
            if lock is not None:
                lock.release()


def train_arrays(
    task: str,
    x: Any,
    y: Any = None,
    *,
    workdir: str | Path,
    class_names: Any = (),
    x_test: Any = None,
    y_test: Any = None,
    sets: dict[str, Any] | None = None,
    progress: bool = False,
    make_plots: bool = True,
) -> dict[str, Any]:
    """Train task `task` ("mlp", "ae", "gan") on images a Python session holds: x uint8 [N, H, W(, C)],
    optional integer labels y, class names and a test split. They are written once, as the run's own data,
    to WORKDIR/data.npz (the run's record names it: npz:PATH), so eval, sample, plot and resume read them
    as they read any source; `sets` are the --set keys. Returns the run's summary, as `jaxgen train`."""
    from jaxgen import configs, data

    cfg = configs.make_config(task, sets)
    run_dir = Path(workdir).absolute()
    path = run_dir / "data.npz"
    if path.exists():  # a rerun resumes on the arrays the run began with, and only on them
        with np.load(path) as old:
            if not np.array_equal(old["x"], np.asarray(x)):
                raise UserError(
                    f"{run_dir} was trained on other images (its data.npz): use another workdir for these"
                )
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        data.save_npz(path, x, y, class_names=class_names, x_test=x_test, y_test=y_test)
    return train(cfg, run_dir, f"npz:{path}", progress=progress, make_plots=make_plots)


@dataclasses.dataclass
class _Chunk:
    """A dispatched chunk whose metrics have not been read yet."""

    step: int  # the step it ends at
    length: int
    metrics: Any
    finite: Any


class Loop:
    """One training run inside its locked run directory, in named phases: `restore`, then `run` (dispatch
    chunk k+1 before `settle`-ing chunk k; at checkpoint steps `evaluate` and `checkpoint`), then
    `summary`. Only process 0 writes logs (`sinks`); every process writes its checkpoint shards."""

    def __init__(self, task: Task, cfg: config_lib.TrainConfig, run_dir: Path, data: dict, *, mesh, per_step):
        self.task, self.cfg, self.run_dir, self.mesh, self.per_step = task, cfg, run_dir, mesh, per_step
        self.train_np, self.val_np, self.test_np = data["train"], data["val"], data["test"]
        self.main = is_main_process()
        self.state, self.train_dev, self.data_key, self.loop_key = place(task, cfg.seed, self.train_np, mesh)
        self.shuffler = batches.EpochShuffles(
            self.train_dev, self.data_key, per_step, NamedSharding(mesh, P())
        )
        self.ckpt = Checkpointer(
            run_dir, keep=cfg.keep, keep_every=cfg.keep_every, keep_best=cfg.keep_best, best=_best(cfg)
        )
        self.last_scores: dict[str, dict[str, Any]] = {}  # split -> `evaluate`'s scores at this checkpoint
        self.compiled: dict[int, Any] = {}
        self.compile_s = 0.0  # compilation, reported apart
        self.paused_s = 0.0  # compilation, evaluation and checkpoints: not training time
        self.start_step = self.step = self.steps_timed = 0
        self.restored = False
        self.stop_signal: int | None = None
        self.sinks: Sinks | None = None
        self.progress = None

    # ---------------------------------------------------------------- phases

    def restore(self) -> None:
        """Continue from the newest good checkpoint, if any; trim the logs to it."""
        restored = self.ckpt.restore_latest(_abstract(self.state))
        if restored is not None:
            self.state, self.start_step, _ = restored
            self.step, self.restored = self.start_step, True
            if self.main:
                print(f"resuming from step {self.start_step}", file=sys.stderr, flush=True)
        elif self.restored:  # asked again after its checkpoints were set aside (seeds.Group): start over
            self.state = place(self.task, self.cfg.seed, self.train_np, self.mesh)[0]
            self.start_step = self.step = 0
            self.restored = False
        if self.main:  # the logs hold what the state holds: nothing past the step we start from
            truncate_metrics(self.run_dir / "metrics.jsonl", self.start_step)

    def chunk_fn(self, length: int, shuffles: Any):
        """The compiled chunk of `length` steps (compiled once per length)."""
        if length not in self.compiled:
            t0 = time.perf_counter()
            self.compiled[length] = compile_chunk(
                self.task, self.per_step, length, self.mesh, self.state, self.train_dev, self.data_key,
                self.loop_key, shuffles,
            )  # fmt: skip
            self.compile_s += time.perf_counter() - t0
        return self.compiled[length]

    def dispatch(self, length: int) -> _Chunk:
        """Start the next chunk on the device (asynchronous) and advance the step counter."""
        shuffles = self.shuffler.for_chunk(self.step, length)  # each epoch's shuffle computed once
        t0 = time.perf_counter()
        fn = self.chunk_fn(length, shuffles)
        self.paused_s += time.perf_counter() - t0
        self.state, metrics, finite = fn(self.state, self.train_dev, self.data_key, self.loop_key, shuffles)
        self.steps_timed += length
        self.step += length
        return _Chunk(self.step, length, metrics, finite)

    def settle(self, chunk: _Chunk) -> None:
        """Read a dispatched chunk's metrics (waiting for it), log them; stop if it diverged."""
        metrics, finite = jax.device_get((chunk.metrics, chunk.finite))  # the one host sync of the chunk
        means = {f"train/{k}": v for k, v in chunk_means(metrics).items()}
        headline = {k: means.get(f"train/{k}", float("nan")) for k in self.task.headline}
        self.progress.chunk(chunk.step, chunk.length, headline)
        if self.sinks is not None:
            clock = self.sinks.clock(chunk.length * self.per_step, self.paused_s)  # time, samples/s
            self.sinks.write(chunk.step, {**means, **clock})
            self.sinks.flush()
        if not finite:
            good = self.ckpt.steps()
            last = f"checkpoint {good[-1]} is the last good one" if good else "no checkpoint was saved yet"
            raise Diverged(
                f"diverged: non-finite parameters or optimizer state after step {chunk.step} (nothing saved"
                f" past it; {last}): lower lr (now {self.cfg.lr:g}) or fix the config, in another --workdir"
            )

    def evaluate(self) -> None:
        """At a checkpoint step: the task's snapshot and image (`preview`), test evaluation, logged and
        synced to disk.

        Logged before the checkpoint lands: a kill in between resumes from the previous checkpoint and
        trims these lines, so the log never misses a checkpoint's row."""
        if self.sinks is None:
            return
        params = jax.device_get(self.state.params)
        if hasattr(self.task, "snapshot"):
            self.task.snapshot(params, self.step, self.run_dir)
        if hasattr(self.task, "preview"):  # an image of the test split: in TensorBoard and samples/step-N.png
            made = self.task.preview(params, next(a for a in (self.test_np, self.train_np) if a is not None))
            if made is not None:
                self.sinks.image(*made, self.step, self.run_dir / "samples" / f"step-{self.step:06d}.png")
        for split, arrays in (("val", self.val_np), ("test", self.test_np)):
            if arrays is not None:  # choices are made on val; test is only reported
                scores = self.task.evaluate(params, arrays, eval_key(self.cfg.seed))
                self.last_scores[split] = scores  # `checkpoint` ranks it by val's (keep_best, patience)
                row = {f"{split}/{k}": v for k, v in scores.items()}
                self.sinks.write(self.step, {**row, **self.sinks.clock()})
        self.sinks.flush(sync=True)

    def open_sinks(self) -> Sinks:
        """This segment's logs; a fresh start's TensorBoard also gets the run's record (resolved.json) as
        hyperparameters beside its headline metrics, and as text: once per run, never on a resume."""
        sinks = Sinks(self.run_dir, self.start_step)
        if self.start_step == 0:
            splits = [s for s, a in (("val", self.val_np), ("test", self.test_np)) if a is not None]
            sinks.header(self.run_dir / "resolved.json", headline_tags(self.task, splits))
        return sinks

    def checkpoint(self, scored: bool = False) -> None:
        """Save the state at this step (every process: orbax writes each one's shards). `scored`: right after
        `evaluate`, so with its validation score (best_metric), which keep_best and patience count."""
        best, score = self.ckpt.best, None
        if scored and best is not None:  # evaluate ran on process 0 alone: its score, on every process
            score = self.last_scores.get("val", {}).get(best.metric.removeprefix("val/"))
            score = from_process_0(None if score is None else float(score))
        self.last_scores = {}
        self.ckpt.save(self.step, self.state, score)

    @property
    def stopped_early(self) -> bool:
        """`patience` checkpoints in a row have not improved best_metric, before cfg.steps."""
        return self.ckpt.best is not None and self.ckpt.best.stopped and self.step < self.cfg.steps

    # ---------------------------------------------------------------- stopping on a signal

    signalled: int | None = None  # several processes, no preemption service: a signal not yet agreed on

    def should_stop(self) -> bool:
        """At a chunk boundary: stop here (settle, checkpoint, exit "interrupted")?

        One process: when a signal has come (`stop_signal`). Several: only at a boundary every process
        stops at, since the checkpoint that follows is a collective save. JAX's preemption service agrees
        on it: jax.distributed catches SIGTERM on any process and tells them all; each asks at every
        boundary and all get True at the same one. With that service off, the processes gather their
        signals here instead (a host sync per chunk)."""
        if jax.process_count() == 1:
            return self.stop_signal is not None
        if preemption_service():
            agreed = multihost_utils.reached_preemption_sync_point(next(_BOUNDARIES))
        else:
            agreed = bool(np.any(multihost_utils.process_allgather(np.int32(self.signalled is not None))))
        if agreed:
            self.stop_signal = self.signalled or signal.SIGTERM
        return agreed

    def open_logs(self, progress: bool) -> None:
        """This segment's sinks (process 0) and progress display."""
        self.sinks = self.open_sinks() if self.main else None
        cfg, epoch_steps = self.cfg, len(self.train_np["label"]) / self.per_step
        show = progress and self.main
        self.progress = Progress(show, self.start_step, cfg.steps, self.task.name, epoch_steps, self.per_step)

    def saved(self, step: int) -> bool:
        return step in self.ckpt.steps()

    def run(self, progress: bool) -> float:
        """Train to cfg.steps, an early stop or a signal; returns the training seconds (`drive`)."""
        self.open_logs(progress)
        run_s = drive(self)
        if self.stopped_early and self.main:  # the straight run and any rerun of it say the same
            print(f"stopped early at step {self.step}: {self.ckpt.best.why()}", file=sys.stderr, flush=True)
        return run_s

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.sinks is not None:
            self.sinks.close()
        self.ckpt.close()

    def summary(self, t_start: float, run_s: float) -> dict[str, Any]:
        """The JSON summary the CLI prints (process 0 adds the last logged metrics)."""
        summary: dict[str, Any] = {
            "task": self.task.name,
            "step": self.step,
            "num_devices": jax.device_count(),
            "device": device_name(),
            "wall_s": round(time.perf_counter() - t_start, 3),
            "compile_s": round(self.compile_s, 3),
            "samples_per_s": round(self.steps_timed * self.per_step / run_s, 1) if self.steps_timed else None,
            "resumed_from": self.start_step if self.restored else None,
            "params_sha256": params_sha256(self.state.params),
            "workdir": str(self.run_dir),
            "stopped_early": self.stopped_early,
        }
        if self.ckpt.best is not None and self.ckpt.best.step is not None:  # what keep_best and patience saw
            b = self.ckpt.best
            summary.update({"best_metric": b.metric, "best_value": _round(b.value), "best_step": b.step})
        if self.main:
            last = _last_metrics(self.run_dir / "metrics.jsonl")
            summary.update(
                {k.replace("/", "_"): _round(v) for k, v in last.items() if isinstance(v, (int, float))}
            )
        return summary

    def plots(self) -> str:
        """The run's figures (process 0), through the one plots.draw_run."""
        from jaxgen import plots

        params = jax.device_get(self.state.params) if self.test_np is not None else None
        plots.draw_run(self.run_dir, self.task, params, self.test_np, self.step)
        return str(self.run_dir / "plots")


# JAX's preemption sync point is asked with 0, 1, 2, ... over the process's life, one per chunk boundary:
# on a notice it answers True at (the largest count any process had reached) + 1, so the counts must
# rise by one, whatever the steps of the boundaries (a prototype: with the steps themselves it never does).
_BOUNDARIES = itertools.count()


def drive(d: Any) -> float:
    """The chunk loop of every run: a Loop, or a seeds.Group (the same phases for all its seeds). Trains to
    cfg.steps, an early stop or an agreed signal; returns the training seconds (no compile, eval or saves).

    Chunks are pipelined: chunk k+1 is dispatched before chunk k's metrics are read and logged, so the
    device never waits for the host's logging. A chunk is settled (read, logged, checked for divergence)
    before any checkpoint or exit, so nothing past a non-finite chunk is ever saved."""
    cfg = d.cfg
    pending = None
    t_loop = time.perf_counter()
    while d.step < cfg.steps and not d.stopped_early and not d.should_stop():
        next_ckpt = (d.step // cfg.ckpt_every + 1) * cfg.ckpt_every
        chunk = d.dispatch(min(cfg.log_every, cfg.steps - d.step, next_ckpt - d.step))
        if pending is not None:
            d.settle(pending)
        pending = chunk
        if d.step % cfg.ckpt_every == 0 or d.step == cfg.steps:
            d.settle(pending)
            pending = None
            t0 = time.perf_counter()
            d.evaluate()
            d.checkpoint(scored=True)
            d.paused_s += time.perf_counter() - t0
    if pending is not None:  # stopped by a signal between checkpoints
        d.settle(pending)
    run_s = time.perf_counter() - t_loop - d.paused_s
    if d.stop_signal is not None and not d.saved(d.step):
        d.checkpoint()
    return run_s


@contextlib.contextmanager
def stop_on_signals(target: Any):
    """While inside: SIGINT and SIGTERM ask `target` (a Loop, or seeds.Group) to finish the chunk in flight,
    checkpoint and exit, through `target.stop_signal`. Several processes: SIGTERM stays with jax.distributed's
    own handler (a Python one would replace it), Ctrl-C becomes that notice, which every process hears; with
    the preemption service off, `target.signalled` is what Loop.should_stop gathers from every process."""
    several = jax.process_count() > 1

    def on_signal(signum, _frame):
        if not several:
            target.stop_signal = signum
        elif preemption_service():
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            target.signalled = signum

    caught = (signal.SIGINT,) if preemption_service() else (signal.SIGINT, signal.SIGTERM)
    old_handlers = {s: signal.signal(s, on_signal) for s in caught}
    try:
        yield
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)


def _train_locked(p: Plan, *, progress: bool, make_plots: bool, t_start: float) -> dict[str, Any]:
    loop = Loop(p.task, p.cfg, p.run_dir, p.data, mesh=p.mesh, per_step=p.per_step)
    try:
        loop.restore()
    except BaseException:
        loop.ckpt.close()
        raise

    with stop_on_signals(loop):
        try:
            run_s = loop.run(progress)
        finally:
            loop.close()
    if loop.stop_signal is not None:
        raise Interrupted(
            f"interrupted at step {loop.step} (checkpoint saved): run the same command to resume"
        )
    summary = loop.summary(t_start, run_s)
    if loop.main and make_plots:
        summary["plots"] = loop.plots()
    return summary


def _best(cfg: config_lib.TrainConfig) -> Best | None:
    """What ranks the run's checkpoints (scored on the validation split: none without one)."""
    metric, _, mode = cfg.best_metric.rpartition(":")
    return Best(metric, mode == "max", cfg.min_delta, cfg.patience) if cfg.val else None


def _round(v: int | float) -> int | float:
    """Metrics for the JSON summary: integers stay integers, floats keep 6 decimals."""
    return v if isinstance(v, int) else round(v, 6)


def _abstract(state: State) -> Any:
    """Shape/dtype/sharding skeleton of a state, what orbax restores into."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def _last_metrics(path: Path) -> dict[str, Any]:
    """The latest value of every metric in metrics.jsonl."""
    last: dict[str, Any] = {}
    for row in metric_rows(path):
        last.update(row)
    for key in ("step", *CLOCK_KEYS):  # the summary times the run itself (wall_s, samples_per_s)
        last.pop(key, None)
    return last
