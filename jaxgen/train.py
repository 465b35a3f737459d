"""The one training driver every task uses: compiled chunks of steps, one host sync each, checkpoints, resume.

A run is a pure function of (config, seed): key -> (init, data, loop) keys; the batch of step s is
`data.batch_at(train, data_key, s)` and its randomness `fold_in(loop_key, s)`, so stopping and resuming
reproduces the straight run. Batches are sharded over a 1-D device mesh ("data"); params are replicated.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import runs, tasks
from jaxgen.checkpoint import Checkpointer, params_sha256, step_dirs
from jaxgen.errors import Diverged, Interrupted, UserError
from jaxgen.runtime import (
    device_name,
    env_info,
    eval_key,
    is_main_process,
    make_mesh,
    precision_scope,
    split_keys,
)
from jaxgen.sinks import Sinks, dumps, metric_rows, truncate_metrics
from jaxgen.tasks.base import State, Task, chunk_means


def run_chunk(
    task: Task,
    batch_size: int,
    length: int,
    batch_sharding: NamedSharding | None,
    state: State,
    train: dict[str, jax.Array],
    data_key: jax.Array,
    loop_key: jax.Array,
    shuffles: tuple[jax.Array, Any] | None = None,
) -> tuple[State, dict[str, jax.Array]]:
    """`length` steps under lax.scan; returns the new state and each step's metrics stacked.

    Pure in its arguments, so it also runs under `jax.vmap` over (state, data_key, loop_key) to train
    several seeds as one program (then pass batch_sharding=None). `shuffles`: the chunk's epoch shuffles
    from data.EpochShuffles (the driver's: each epoch's computed once); None computes them here.
    """

    # Each epoch's shuffle once per chunk at most, never once per step (a sort of the whole training
    # set): the batches are data.batch_at's, bit for bit.
    if shuffles is None:
        shuffles = data_lib.chunk_shuffles(train, data_key, state.step, batch_size, length)
    perms, first_epoch = shuffles

    def body(state: State, _):
        batch = data_lib.batch_from(train, perms, first_epoch, state.step, batch_size)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        return task.step(state, batch, jax.random.fold_in(loop_key, state.step))

    return jax.lax.scan(body, state, None, length=length)


def place(task: Task, seed: int, train_np: dict, mesh: jax.sharding.Mesh) -> tuple[State, dict, Any, Any]:
    """(initial state, train arrays, data_key, loop_key) as global replicated arrays on `mesh`.

    Made inside jit so that every process of a multi-host run holds the same values.
    """
    replicated = NamedSharding(mesh, P())
    init_key, data_key, loop_key = jax.jit(split_keys, static_argnums=0, out_shardings=replicated)(seed)
    state = jax.jit(task.init, out_shardings=replicated)(init_key)
    return state, jax.device_put(train_np, replicated), data_key, loop_key


def all_finite(tree: Any) -> jax.Array:
    """One boolean on the device: every floating-point leaf of `tree` is free of NaN and infinity."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def compile_chunk(
    task: Task, batch_size: int, length: int, mesh, state, train, data_key, loop_key, shuffles=None
):
    """`run_chunk` of `length` steps, batch sharded over `mesh`, state donated, compiled ahead of time.

    Called as fn(state, train, data_key, loop_key[, shuffles]) -- with shuffles when compiled with an
    example of them (data.EpochShuffles.for_chunk) -- and returns (state, metrics, finite): `finite` is
    one device flag, False when any state leaf is NaN/inf.
    """
    chunk = functools.partial(run_chunk, task, batch_size, length, NamedSharding(mesh, P("data")))

    def checked(state, train, data_key, loop_key, *shuffles):
        state, metrics = chunk(state, train, data_key, loop_key, *shuffles)
        return state, metrics, all_finite(state)

    args = (state, train, data_key, loop_key) + (() if shuffles is None else (shuffles,))
    return jax.jit(checked, donate_argnums=0).lower(*args).compile()


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
    that the CLI prints as JSON.

    Everything the user can get wrong is checked before anything is written or compiled.
    """
    t_start = time.perf_counter()
    task_name = cfg.TASK
    if not str(workdir).strip():
        raise UserError("--workdir is empty: name a folder for the run (e.g. --workdir runs/mlp)")
    run_dir = Path(workdir).absolute()
    data_lib.parse_spec(spec)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--workdir {workdir} is a file: name a directory")
    if (run_dir / "config.json").exists():
        runs.check_same_run(run_dir, spec, cfg)

    ds = data_lib.load(spec)
    train_np = data_lib.split(ds, "train")
    test_np = ds.test
    # What runs is the resolved config: a task may fill in "chosen for the data" defaults (the GAN's
    # steps, packing, ...); config.json keeps what the user asked for, so rerunning the same command
    # resumes, and resolved.json what ran.
    asked, cfg = cfg, tasks.resolve(cfg, ds)
    task = tasks.build(cfg, ds)
    per_step = task.examples_per_step  # the driver draws this many examples per step (GAN: d_steps batches)
    if per_step > len(train_np["label"]):
        raise UserError(
            f"batch_size {cfg.batch_size} needs {per_step} examples per step, more than the"
            f" {len(train_np['label'])} training examples: lower --set batch_size"
        )
    mesh = make_mesh()
    if cfg.batch_size % mesh.size:
        raise UserError(f"batch_size {cfg.batch_size} must be a multiple of the {mesh.size} devices")
    on_disk = step_dirs(run_dir / "checkpoints")
    if on_disk and on_disk[-1] > cfg.steps:
        raise UserError(
            f"{run_dir} is already at step {on_disk[-1]}, past steps={cfg.steps}: pass --set"
            f" steps={on_disk[-1]} or more to extend it, or use another --workdir"
        )

    main = is_main_process()
    lock = runs.WorkdirLock(run_dir) if main else None
    with precision_scope(cfg.precision):
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if lock is not None:
                lock.acquire()
            if main:
                for name, c in (("config.json", asked), ("resolved.json", cfg)):
                    body = {"task": task_name, "data": spec, **config_lib.to_dict(c)}
                    (run_dir / f"{name}.tmp").write_text(dumps(body, indent=2) + "\n")
                    (run_dir / f"{name}.tmp").replace(run_dir / name)
                runs.record_start(run_dir, env_info(train_np))
            return _train_locked(task_name, task, cfg, run_dir, train_np, test_np, mesh, per_step,
                                 progress=progress, make_plots=make_plots, t_start=t_start)  # fmt: skip
        except OSError as err:
            raise runs.os_error(err, run_dir) from None
        finally:
            if lock is not None:
                lock.release()


def _train_locked(
    task_name, task, cfg, run_dir, train_np, test_np, mesh, per_step, *, progress, make_plots, t_start
) -> dict[str, Any]:
    main = is_main_process()
    state, train_dev, data_key, loop_key = place(task, cfg.seed, train_np, mesh)
    ckpt = Checkpointer(run_dir, keep=cfg.keep, keep_every=cfg.keep_every)
    start_step = 0
    try:
        restored = ckpt.restore_latest(_abstract(state))
    except BaseException:
        ckpt.close()
        raise
    if restored is not None:
        state, start_step, _ = restored
        if main:
            print(f"resuming from step {start_step}", file=sys.stderr, flush=True)
    if main:  # the logs hold what the state holds: nothing past the step we start from
        truncate_metrics(run_dir / "metrics.jsonl", start_step)

    compiled: dict[int, Any] = {}
    compile_s = 0.0
    shuffler = data_lib.EpochShuffles(train_dev, data_key, per_step, NamedSharding(mesh, P()))

    def chunk_fn(length: int, shuffles):
        nonlocal compile_s
        if length not in compiled:
            t0 = time.perf_counter()
            compiled[length] = compile_chunk(
                task, per_step, length, mesh, state, train_dev, data_key, loop_key, shuffles
            )
            compile_s += time.perf_counter() - t0
        return compiled[length]

    stop = {"signal": None}

    def on_signal(signum, _frame):  # finish the chunk in flight, checkpoint, then exit
        stop["signal"] = signum

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sinks = Sinks(run_dir, start_step) if main else None
    bar = _progress(progress and main, start_step, cfg.steps, task_name)
    step, steps_timed = start_step, 0
    try:

        def settle(chunk: tuple) -> None:
            """Read a dispatched chunk's metrics (waiting for it), log them; stop if it diverged."""
            at, length, metrics, finite = chunk
            metrics, finite = jax.device_get((metrics, finite))  # the one host sync of the chunk
            means = {f"train/{k}": v for k, v in chunk_means(metrics).items()}
            bar.update(length)
            bar.set_postfix({k: f"{means.get(f'train/{k}', float('nan')):.4f}" for k in task.headline})
            if sinks is not None:
                sinks.write(at, means)
                sinks.flush()
            if not finite:
                good = ckpt.steps()
                last = (
                    f"checkpoint {good[-1]} is the last good one" if good else "no checkpoint was saved yet"
                )
                raise Diverged(
                    f"diverged: non-finite parameters or optimizer state after step {at} (nothing saved"
                    f" past it; {last}): lower lr (now {cfg.lr:g}) or fix the config, in another --workdir"
                )

        # Chunks are pipelined: chunk k+1 is dispatched before chunk k's metrics are read and logged, so the
        # device never waits for the host's logging. A chunk is settled (read, logged, checked for
        # divergence) before any checkpoint or exit, so nothing past a non-finite chunk is ever saved.
        pending = None
        t_loop, paused_s = time.perf_counter(), 0.0
        while step < cfg.steps and stop["signal"] is None:
            next_ckpt = (step // cfg.ckpt_every + 1) * cfg.ckpt_every
            length = min(cfg.log_every, cfg.steps - step, next_ckpt - step)
            shuffles = shuffler.for_chunk(step, length)  # each epoch's shuffle computed once
            t0 = time.perf_counter()
            fn = chunk_fn(length, shuffles)
            paused_s += time.perf_counter() - t0  # compilation is reported apart
            state, metrics, finite = fn(state, train_dev, data_key, loop_key, shuffles)  # asynchronous
            steps_timed += length
            step += length
            if pending is not None:
                settle(pending)
            pending = (step, length, metrics, finite)
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                settle(pending)
                pending = None
                t0 = time.perf_counter()
                # Log the step's evaluation before its checkpoint lands: a kill in between resumes from
                # the previous checkpoint and trims these lines, so the log never misses a checkpoint's row.
                if sinks is not None:
                    params = jax.device_get(state.params)
                    if hasattr(task, "snapshot"):
                        task.snapshot(params, step, run_dir)
                    if test_np is not None:
                        scores = task.evaluate(params, test_np, eval_key(cfg.seed))
                        sinks.write(step, {f"test/{k}": v for k, v in scores.items()})
                    sinks.flush(sync=True)
                ckpt.save(step, state)  # every process: orbax writes each one's shards
                paused_s += time.perf_counter() - t0
        if pending is not None:  # stopped by a signal between checkpoints
            settle(pending)
        run_s = time.perf_counter() - t_loop - paused_s  # training and its logging; no compile, eval, saves
        if stop["signal"] is not None and step not in ckpt.steps():
            ckpt.save(step, state)
    finally:
        bar.close()
        if sinks is not None:
            sinks.close()
        ckpt.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
    if stop["signal"] is not None:
        raise Interrupted(f"interrupted at step {step} (checkpoint saved): run the same command to resume")

    summary: dict[str, Any] = {
        "task": task_name,
        "step": step,
        "num_devices": jax.device_count(),
        "device": device_name(),
        "wall_s": round(time.perf_counter() - t_start, 3),
        "compile_s": round(compile_s, 3),
        "samples_per_s": round(steps_timed * per_step / run_s, 1) if steps_timed else None,
        "resumed_from": start_step if restored is not None else None,
        "params_sha256": params_sha256(state.params),
        "workdir": str(run_dir),
    }
    if not main:
        return summary
    last = _last_metrics(run_dir / "metrics.jsonl")
    summary.update({k.replace("/", "_"): _round(v) for k, v in last.items() if isinstance(v, (int, float))})
    if make_plots:
        from jaxgen import plots

        params = jax.device_get(state.params) if test_np is not None else None
        plots.draw_run(run_dir, task, params, test_np, step)
        summary["plots"] = str(run_dir / "plots")
    return summary


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
    last.pop("step", None)
    return last


def _progress(enabled: bool, start: int, total: int, desc: str):
    """A tqdm bar on stderr (stdout stays clean for the JSON summary)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=desc, unit="step", disable=not enabled, file=sys.stderr)
