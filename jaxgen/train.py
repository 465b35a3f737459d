"""The one training driver every task uses: compiled chunks of steps, one host sync each, checkpoints, resume.

A run is a pure function of (config, seed): key -> (init, data, loop) keys; the batch of step s is
`data.batch_at(train, data_key, s)` and its randomness `fold_in(loop_key, s)`, so stopping and resuming
reproduces the straight run. Batches are sharded over a 1-D device mesh ("data"); params are replicated.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import tasks
from jaxgen.checkpoint import Checkpointer, params_sha256
from jaxgen.errors import UserError
from jaxgen.tasks.base import State, Task


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
) -> tuple[State, dict[str, jax.Array]]:
    """`length` steps under lax.scan; returns the new state and each step's metrics stacked.

    Pure in its arguments, so it also runs under `jax.vmap` over (state, data_key, loop_key) to train
    several seeds as one program (then pass batch_sharding=None).
    """

    # Each epoch's shuffle once per chunk, not once per step (a sort of the whole training set): the
    # batches are data.batch_at's, bit for bit.
    perms, first_epoch = data_lib.chunk_shuffles(train, data_key, state.step, batch_size, length)

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


def compile_chunk(task: Task, batch_size: int, length: int, mesh, state, train, data_key, loop_key):
    """`run_chunk` of `length` steps, batch sharded over `mesh`, state donated, compiled ahead of time."""
    chunk = functools.partial(run_chunk, task, batch_size, length, NamedSharding(mesh, P("data")))
    return jax.jit(chunk, donate_argnums=0).lower(state, train, data_key, loop_key).compile()


# ---------------------------------------------------------------- run directory


def env_info() -> dict[str, Any]:
    """Versions and devices, written to env.json so every figure names its machine."""
    import flax
    import optax
    import orbax.checkpoint

    devices = jax.devices()
    return {
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
    }


def device_name() -> str:
    """e.g. 'cpu (2 cores)' or 'NVIDIA H100 80GB HBM3 x1'."""
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{d.device_kind} x{jax.device_count()}"


def load_run(run_dir: Path) -> tuple[str, str, config_lib.TrainConfig]:
    """(task, data spec, config) saved in a run directory."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise UserError(
            f"{run_dir} holds no run (no config.json): train one with jaxgen train TASK --workdir DIR"
        )
    raw = json.loads(path.read_text())
    task, spec = raw.pop("task"), raw.pop("data")
    return task, spec, config_lib.from_dict(task, raw)


def _check_same_run(run_dir: Path, task: str, spec: str, cfg: config_lib.TrainConfig) -> None:
    """Refuse to mix two different runs in one directory; only RESUMABLE_KEYS may change."""
    old_task, old_spec, old_cfg = load_run(run_dir)
    if old_task != task:
        raise UserError(f"{run_dir} holds a {old_task} run, not {task}: use another --workdir")
    if old_spec != spec:
        raise UserError(f"{run_dir} was trained on --data {old_spec}, not {spec}: use another --workdir")
    old, new = config_lib.to_dict(old_cfg), config_lib.to_dict(cfg)
    diff = [k for k in new if k not in config_lib.RESUMABLE_KEYS and old.get(k) != new[k]]
    if diff:
        k = diff[0]
        raise UserError(f"{run_dir} holds a run with {k}={old.get(k)}, not {new[k]}: use another --workdir")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past `step`: a killed run logged steps that resuming will redo."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in keep))


class _Sinks:
    """metrics.jsonl (always) and TensorBoard event files."""

    def __init__(self, run_dir: Path):
        self.jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in close()
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:  # TensorBoard files are a convenience; JSONL is the record
            self.tb = None

    def write(self, step: int, values: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):  # lists (e.g. per-digit fractions) live in the JSONL only
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


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
    """Train (or resume) the run in `workdir`; returns the summary that the CLI prints as JSON."""
    t_start = time.perf_counter()
    run_dir = Path(workdir).absolute()
    data_lib.parse_spec(spec)
    if (run_dir / "config.json").exists():
        _check_same_run(run_dir, task_name, spec, cfg)
    elif run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--workdir {workdir} is a file: name a directory")

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

    main = is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        (run_dir / "config.json").write_text(
            json.dumps({"task": task_name, "data": spec, **config_lib.to_dict(cfg)}, indent=2) + "\n"
        )
        (run_dir / "env.json").write_text(json.dumps(env_info(), indent=2) + "\n")

    # What runs is the task's config: a task may resolve "chosen for the data" defaults (the GAN's steps,
    # packing, ...); config.json keeps what the user asked for, so rerunning the same command resumes.
    cfg = getattr(task, "cfg", cfg)
    state, train_dev, data_key, loop_key = place(task, cfg.seed, train_np, mesh)
    ckpt = Checkpointer(run_dir)
    start_step = 0
    restored = ckpt.restore_latest(_abstract(state))
    if restored is not None:
        state, start_step, _ = restored
        if main:
            print(f"resuming from step {start_step}", file=sys.stderr, flush=True)
            _truncate_metrics(run_dir / "metrics.jsonl", start_step)

    compiled: dict[int, Any] = {}
    compile_s = 0.0

    def chunk_fn(length: int):
        nonlocal compile_s
        if length not in compiled:
            t0 = time.perf_counter()
            compiled[length] = compile_chunk(
                task, per_step, length, mesh, state, train_dev, data_key, loop_key
            )
            compile_s += time.perf_counter() - t0
        return compiled[length]

    stop = {"signal": None}

    def on_signal(signum, _frame):  # finish the chunk in flight, checkpoint, then exit
        stop["signal"] = signum

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sinks = _Sinks(run_dir) if main else None
    bar = _progress(progress and main, start_step, cfg.steps, task_name)
    step, run_s, steps_timed = start_step, 0.0, 0
    try:
        while step < cfg.steps and stop["signal"] is None:
            next_ckpt = (step // cfg.ckpt_every + 1) * cfg.ckpt_every
            length = min(cfg.log_every, cfg.steps - step, next_ckpt - step)
            fn = chunk_fn(length)
            t0 = time.perf_counter()
            state, metrics = fn(state, train_dev, data_key, loop_key)
            metrics = jax.device_get(metrics)  # the one host sync of the chunk
            run_s += time.perf_counter() - t0
            steps_timed += length
            step += length
            means = {f"train/{k}": float(np.mean(v)) for k, v in metrics.items()}
            bar.update(length)
            bar.set_postfix({k: f"{means.get(f'train/{k}', float('nan')):.4f}" for k in task.headline})
            if sinks is not None:
                sinks.write(step, means)
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                ckpt.save(step, state)  # every process: orbax writes each one's shards
                if sinks is not None:
                    params = jax.device_get(state.params)
                    if hasattr(task, "snapshot"):
                        task.snapshot(params, step, run_dir)
                    if test_np is not None:
                        scores = task.evaluate(params, test_np, eval_key(cfg.seed))
                        sinks.write(step, {f"test/{k}": v for k, v in scores.items()})
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
        raise UserError(f"interrupted at step {step} (checkpoint saved): run the same command to resume")

    summary: dict[str, Any] = {
        "task": task_name,
        "step": step,
        "num_devices": jax.device_count(),
        "device": device_name(),
        "wall_s": round(time.perf_counter() - t_start, 3),
        "compile_s": round(compile_s, 3),
        "samples_per_s": round(steps_timed * per_step / run_s, 1) if run_s > 0 else None,
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
    if path.exists():
        for line in path.read_text().splitlines():
            last.update(json.loads(line))
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
    ckpt = Checkpointer(run_dir)
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
