"""The one training driver every task uses: compiled chunks of steps, one host sync each, checkpoints, resume.

A run is a pure function of (config, seed): key -> (init, data, loop) keys; the batch of step s is
`data.batch_at(train, data_key, s)` and its randomness `fold_in(loop_key, s)`, so stopping and resuming
reproduces the straight run. Batches are sharded over a 1-D device mesh ("data"); params are replicated.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import runs, tasks
from jaxgen.checkpoint import Checkpointer, params_sha256, step_dirs
from jaxgen.errors import Diverged, Interrupted, UserError
from jaxgen.tasks.base import State, Task, chunk_means


def init_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Join a multi-process run (several hosts, or several processes on one); call before any JAX work.

    With no arguments JAX detects the cluster (Cloud TPU, SLURM, Open MPI, Kubernetes).
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes talk over gloo
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )


def is_main_process() -> bool:
    """Process 0 writes the run directory's logs and plots; every process writes its checkpoint shards."""
    return jax.process_index() == 0


def make_mesh() -> jax.sharding.Mesh:
    """All devices (of every host) on one data-parallel axis."""
    # Auto axes: XLA propagates the batch sharding through the step; params stay replicated.
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def split_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init_key, data_key, loop_key) of a run."""
    init_key, data_key, loop_key = jax.random.split(jax.random.key(seed), 3)
    return init_key, data_key, loop_key


def eval_key(seed: int) -> jax.Array:
    """The fixed key of a run's evaluations and samples (the same at every checkpoint, eval and plot)."""
    return jax.random.fold_in(jax.random.key(seed), 0xE7A1)


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


# ---------------------------------------------------------------- run directory


def env_info(train_np: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Versions, devices, command and code version of this start (env.json keeps one per start)."""
    import flax
    import optax
    import orbax.checkpoint

    devices = jax.devices()
    info = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "flax": flax.__version__,
        "optax": optax.__version__,
        "orbax_checkpoint": getattr(orbax.checkpoint, "__version__", None),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "num_devices": jax.device_count(),
        "process_count": jax.process_count(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "git_commit": _git_commit(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),  # in precision_scope
    }
    if train_np is not None:
        h = hashlib.sha256()
        for k in sorted(train_np):
            h.update(np.ascontiguousarray(train_np[k]).tobytes())
        info["data_sha256"] = h.hexdigest()
    return info


def _git_commit() -> str | None:
    """The commit of the jaxgen source tree, when it is a git checkout (a '+' marks uncommitted changes)."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return None
    try:
        git = ["git", "-C", str(repo)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def device_name() -> str:
    """e.g. 'cpu (2 cores)' or 'NVIDIA H100 80GB HBM3 x1'."""
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{d.device_kind} x{jax.device_count()}"


load_run = runs.load_run  # (task, spec, config) of a run directory


# ---------------------------------------------------------------- the driver


def train(
    task_name: str,
    cfg: config_lib.TrainConfig,
    workdir: str | Path,
    spec: str = "embedded",
    *,
    progress: bool = True,
    make_plots: bool = True,
) -> dict[str, Any]:
    """Train (or resume) the run in `workdir`; returns the summary that the CLI prints as JSON.

    Everything the user can get wrong is checked before anything is written or compiled.
    """
    t_start = time.perf_counter()
    if not str(workdir).strip():
        raise UserError("--workdir is empty: name a folder for the run (e.g. --workdir runs/mlp)")
    run_dir = Path(workdir).absolute()
    data_lib.parse_spec(spec)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--workdir {workdir} is a file: name a directory")
    if (run_dir / "config.json").exists():
        runs.check_same_run(run_dir, task_name, spec, cfg)

    ds = data_lib.load(spec)
    train_np = data_lib.split(ds, "train")
    test_np = ds.test
    task = tasks.build(task_name, cfg, ds)
    per_step = task.examples_per_step  # the driver draws this many examples per step (GAN: d_steps batches)
    if per_step > len(train_np["label"]):
        raise UserError(
            f"batch_size {cfg.batch_size} needs {per_step} examples per step, more than the"
            f" {len(train_np['label'])} training examples: lower --set batch_size"
        )
    mesh = make_mesh()
    if cfg.batch_size % mesh.size:
        raise UserError(f"batch_size {cfg.batch_size} must be a multiple of the {mesh.size} devices")
    # What runs is the task's config: a task may resolve "chosen for the data" defaults (the GAN's steps,
    # packing, ...); config.json keeps what the user asked for, so rerunning the same command resumes.
    asked, cfg = cfg, getattr(task, "cfg", cfg)
    on_disk = step_dirs(run_dir / "checkpoints")
    if on_disk and on_disk[-1] > cfg.steps:
        raise UserError(
            f"{run_dir} is already at step {on_disk[-1]}, past steps={cfg.steps}: pass --set"
            f" steps={on_disk[-1]} or more to extend it, or use another --workdir"
        )

    main = is_main_process()
    lock = runs.WorkdirLock(run_dir) if main else None
    with precision_scope(cfg):
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if lock is not None:
                lock.acquire()
            if main:
                body = {"task": task_name, "data": spec, **config_lib.to_dict(asked)}
                (run_dir / "config.json.tmp").write_text(runs.dumps(body, indent=2) + "\n")
                (run_dir / "config.json.tmp").replace(run_dir / "config.json")
                runs.record_start(run_dir, env_info(train_np))
            return _train_locked(task_name, task, cfg, run_dir, train_np, test_np, mesh, per_step,
                                 progress=progress, make_plots=make_plots, t_start=t_start)  # fmt: skip
        except OSError as err:
            raise runs.os_error(err, run_dir) from None
        finally:
            if lock is not None:
                lock.release()


def precision_scope(cfg: config_lib.TrainConfig):
    """The run's matmul precision for everything traced inside (train, eval, sample): a context."""
    if cfg.precision == "default":
        return contextlib.nullcontext()
    return jax.default_matmul_precision(cfg.precision)


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
        runs.truncate_metrics(run_dir / "metrics.jsonl", start_step)

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
    sinks = runs.Sinks(run_dir, start_step) if main else None
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

        plots.curves(run_dir)
        if test_np is not None:
            task.figures(jax.device_get(state.params), test_np, run_dir / "plots", step=step)
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
    for row in runs.metric_rows(path):
        last.update(row)
    last.pop("step", None)
    return last


def _progress(enabled: bool, start: int, total: int, desc: str):
    """A tqdm bar on stderr (stdout stays clean for the JSON summary)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=desc, unit="step", disable=not enabled, file=sys.stderr)


def restore_for_eval(
    run_dir: Path, spec: str | None = None
) -> tuple[Task, State, int, str, data_lib.Dataset]:
    """(task, state, step, params_sha256, dataset) of the newest good checkpoint in `run_dir`."""
    task_name, run_spec, cfg = load_run(run_dir)
    spec = spec or run_spec
    data_lib.parse_spec(spec)
    ds = data_lib.load(spec)
    # The task is configured by the data it was trained on (an autoencoder's PCA baseline and kNN use
    # its training split); `ds` is only what it is evaluated on.
    task = tasks.build(task_name, cfg, ds if spec == run_spec else data_lib.load(run_spec))
    init_key, _, _ = split_keys(cfg.seed)
    abstract = jax.eval_shape(task.init, init_key)
    replicated = NamedSharding(make_mesh(), P())
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract)
    ckpt = Checkpointer(run_dir, writer=False)  # a reader: may run beside the trainer, changes nothing
    try:
        restored = ckpt.restore_latest(abstract)
    finally:
        ckpt.close()
    if restored is None:
        raise UserError(
            f"{run_dir} has no readable checkpoint: run jaxgen train again with --workdir {run_dir}"
        )
    state, step, digest = restored
    return task, state, step, digest, ds
