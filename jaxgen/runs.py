"""Run directories: config.json, env.json history, the writer's lock, and restoring a run for its readers.

What both the driver (the one writer) and the readers (eval, sample, plot, the judge) use; a reader never
writes. The record itself (metrics.jsonl, TensorBoard files) is jaxgen.sinks'.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import config as config_lib
from jaxgen import configs, runtime, tasks
from jaxgen import data as data_lib
from jaxgen.checkpoint import Checkpointer, step_dirs
from jaxgen.errors import UserError
from jaxgen.retention import Best
from jaxgen.sinks import dumps, metric_rows
from jaxgen.tasks.base import State, Task, norm_every

LOCK = ".lock"


def load_run(run_dir: Path) -> tuple[str, str, config_lib.TrainConfig]:
    """(task, data spec, config as it ran) from the run's record, DIR/resolved.json: every value concrete, so
    the run is rebuilt as it was trained whatever today's defaults are. A damaged record is one line."""
    path = Path(run_dir) / "resolved.json"
    if not path.exists():
        if (Path(run_dir) / "config.json").exists():
            raise UserError(
                f"{run_dir} has config.json but no resolved.json (the run stopped before it began):"
                " use another --workdir, or delete the folder and train again"
            )
        raise UserError(
            f"{run_dir} holds no run (no resolved.json): train one with jaxgen train TASK --workdir DIR"
        )
    fix = "restore it from a copy (the checkpoints cannot be read without it)"
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({' '.join(str(err).split())[:80]}): {fix}") from None
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror}): {fix}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a JSON object: {fix}")
    return configs.from_record(raw, str(path))


def resume_config(run_dir: Path, spec: str, asked: config_lib.TrainConfig) -> config_lib.TrainConfig:
    """The config a rerun in `run_dir` continues with: the run's record, with the RESUMABLE_KEYS the user set
    now (a larger `steps`, ...). Any other key the user set must equal the record's: two runs never mix."""
    task = asked.TASK
    old_task, old_spec, record = load_run(run_dir)
    if old_task != task:
        raise UserError(f"{run_dir} holds a {old_task} run, not {task}: use another --workdir")
    if old_spec != spec:
        raise UserError(f"{run_dir} was trained on --data {old_spec}, not {spec}: use another --workdir")
    changes = {}
    for key in sorted(config_lib.explicit(asked)):
        new, old = getattr(asked, key), getattr(record, key)
        if key in config_lib.RESUMABLE_KEYS:
            changes[key] = new
        elif new != old and record.applies(key):
            raise UserError(
                f"{run_dir} holds a run with {key}={_shown(old)} (its resolved.json), not"
                f" {key}={_shown(new)}: drop --set {key} to resume it, or use another --workdir"
            )
        elif not record.applies(key):
            raise UserError(f"{key} does nothing for this run's arch={record.arch}: drop --set {key}")
    if "conv_impl" not in changes and record.applies("conv_impl"):
        changes["conv_impl"] = asked.conv_impl  # how, not what: this machine's choice
    resumed = dataclasses.replace(record, **changes)
    resumed.check()
    return resumed


def _shown(value: Any) -> str:
    """A value as --set spells it (widths: 32,64)."""
    return (
        ",".join(map(str, value))
        if isinstance(value, tuple)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


# ---------------------------------------------------------------- a training command, planned


@dataclasses.dataclass
class Plan:
    """A run checked end to end before anything is written or compiled (`plan`)."""

    run_dir: Path
    spec: str
    asked: config_lib.TrainConfig  # what the user asked for: config.json (rerunning it resumes)
    cfg: config_lib.TrainConfig  # what runs, resolved for the data: resolved.json
    task: Task
    data: dict[str, Any]  # host arrays: "train", "val" (None unless cfg.val), "test" (None if absent)
    mesh: jax.sharding.Mesh
    per_step: int  # examples the driver draws per step (GAN: d_steps batches)


def plan(cfg: config_lib.TrainConfig, workdir: str | Path, spec: str) -> Plan:
    """Every check of a training command that needs no compilation: one-line errors naming the fix."""
    if not str(workdir).strip():
        raise UserError("--workdir is empty: name a folder for the run (e.g. --workdir runs/mlp)")
    run_dir = Path(workdir).absolute()
    data_lib.parse_spec(spec)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--workdir {workdir} is a file: name a directory")
    if (run_dir / "resolved.json").exists() or (run_dir / "config.json").exists():
        resolved = resume_config(run_dir, spec, cfg)  # the run's record: nothing is chosen again
    else:
        resolved = None
    ds = configs.data_for(resolved or cfg, spec)  # at the run's image size; ds.train: what it trains on
    train_np = data_lib.split(ds, "train")
    if resolved is None:
        resolved = tasks.resolve(cfg, ds)  # a new run: the defaults for the data, once (resolved.json)
    resolved.check_scores(ds)  # keep_best and patience rank by a score the validation evaluation gives
    task = tasks.build(resolved, ds)
    per_step = task.examples_per_step
    if per_step > len(train_np["label"]):
        raise UserError(
            f"batch_size {resolved.batch_size} needs {per_step} examples per step, more than the"
            f" {len(train_np['label'])} training examples: lower --set batch_size"
        )
    check_fits(train_np, spec, resolved.image_size)
    norm_every()  # a bad JAXGEN_NORM_EVERY is one line here, not an error inside the compiler
    mesh = runtime.make_mesh()
    if resolved.batch_size % mesh.size:
        raise UserError(f"batch_size {resolved.batch_size} must be a multiple of the {mesh.size} devices")
    on_disk = step_dirs(run_dir / "checkpoints")
    if on_disk and on_disk[-1] > resolved.steps:
        raise UserError(
            f"{run_dir} is already at step {on_disk[-1]}, past steps={resolved.steps}: pass --set"
            f" steps={on_disk[-1]} or more to extend it, or use another --workdir"
        )
    data = {"train": train_np, "val": ds.val, "test": ds.test}
    return Plan(run_dir, spec, cfg, resolved, task, data, mesh, per_step)


# The training split lives on every device whole (uint8): at most this share of a device's memory, the rest
# being the model's, the optimizer's and the activations'.
DATA_SHARE = 0.5


def check_fits(train_np: dict[str, Any], spec: str, image_size: int | None) -> None:
    """One line, before anything is placed, when the training split would not fit on a device."""
    size = sum(int(a.nbytes) for a in train_np.values())
    limit = runtime.device_memory_bytes()
    if limit is None or size <= DATA_SHARE * limit:
        return
    images = train_np["image"]
    what = f"{len(images):,} images of {'x'.join(map(str, images.shape[1:]))}"
    fix = (
        f"lower --set image_size (now {image_size}; the bytes go with its square)"
        if image_size
        else "use a smaller part of the data"
    )
    raise UserError(
        f"the training split of {spec} is {size / 2**30:.2f} GiB ({what}), more than"
        f" {DATA_SHARE:.0%} of the {limit / 2**30:.1f} GiB of {runtime.device_name()} where it must live"
        f" whole: {fix}"
    )


def write_configs(p: Plan) -> None:
    """resolved.json (the record: what runs, every value concrete) and, for a new run, config.json (what
    was asked; null = chosen for the data), each replaced atomically."""
    bodies = {"resolved.json": configs.record(p.cfg, p.spec)}
    if not (p.run_dir / "config.json").exists():
        bodies["config.json"] = {"task": p.asked.TASK, "data": p.spec, **config_lib.to_dict(p.asked)}
    for name, body in bodies.items():
        (p.run_dir / f"{name}.tmp").write_text(dumps(body, indent=2) + "\n")
        (p.run_dir / f"{name}.tmp").replace(p.run_dir / name)


class Restored(NamedTuple):
    """A run's newest good checkpoint, ready to evaluate, sample or plot."""

    task: Task
    state: State
    step: int
    params_sha256: str
    dataset: data_lib.Dataset  # what it is evaluated on (the run's data unless another spec was given)
    cfg: config_lib.TrainConfig  # the config as it ran (resolved for the run's data)
    spec: str  # the data spec the run was trained on


def restore_for_eval(
    run_dir: Path,
    spec: str | None = None,
    run: tuple[str, str, config_lib.TrainConfig] | None = None,
    checkpoint: str | int = "latest",
) -> Restored:
    """The newest good checkpoint in `run_dir` (`checkpoint`: "best" by the run's best_metric, or a step),
    its task built from the run's record (resolved.json), evaluated on `spec`'s data (default: the run's).
    `run`: load_run's result when the caller has it."""
    _, run_spec, cfg = run if run is not None else load_run(run_dir)
    ds = data_lib.load(spec or run_spec, cfg.image_size)  # another spec is read at the run's size too
    # The task is configured by the data it was trained on (an autoencoder's PCA baseline and kNN use
    # its training split, without the validation examples); `ds` is only what it is evaluated on.
    trained_on = (
        configs.data_for(cfg, run_spec) if ds.spec != run_spec else data_lib.with_validation(ds, cfg.val)
    )
    if ds.spec == run_spec:
        ds = trained_on
    task = tasks.task_class(cfg)(cfg, trained_on)  # the record is concrete: nothing is chosen again
    init_key, _, _ = runtime.split_keys(cfg.seed)
    abstract = jax.eval_shape(task.init, init_key)
    replicated = NamedSharding(runtime.make_mesh(), P())
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract)
    ranking = _ranking(Path(run_dir), cfg) if checkpoint == "best" else ()
    ckpt = Checkpointer(run_dir, writer=False)  # a reader: may run beside the trainer, changes nothing
    try:
        restored = ckpt.restore(abstract, checkpoint, *ranking)
    finally:
        ckpt.close()
    if restored is None:
        raise UserError(
            f"{run_dir} has no readable checkpoint: run jaxgen train again with --workdir {run_dir}"
        )
    state, step, digest = restored
    return Restored(task, state, step, digest, ds, cfg, run_spec)


def _ranking(run_dir: Path, cfg: config_lib.TrainConfig) -> tuple[Best, dict[int, float]]:
    """What ranks a run's checkpoints: its best_metric, and the score logged at each step (metrics.jsonl),
    for checkpoints saved without theirs (before jaxgen saved scores with checkpoints)."""
    if not cfg.val:
        raise UserError(
            f"{run_dir} holds out no validation split (val=0), so nothing ranks its checkpoints: use"
            " --checkpoint latest or a step"
        )
    metric, _, mode = cfg.best_metric.rpartition(":")
    rows = [r for r in metric_rows(run_dir / "metrics.jsonl") if isinstance(r.get(metric), (int, float))]
    return Best(metric, mode == "max"), {r["step"]: r[metric] for r in rows}


def os_error(err: OSError, run_dir: Path) -> UserError:
    """A file-system failure as one line naming the fix."""
    where = err.filename or run_dir
    if err.errno == errno.ENOSPC:
        fix = "free disk space, then run the same command to resume"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "make it writable or use another --workdir"
    else:
        fix = "check the folder, then run the same command"
    return UserError(
        f"cannot write {where} ({err.strerror or err}): {fix}; checkpoints already saved are intact"
    )


# ---------------------------------------------------------------- env.json history


def record_start(run_dir: Path, info: dict[str, Any]) -> None:
    """env.json: the latest start's fields at the top (what figures read) and every start under "starts"."""
    path = Path(run_dir) / "env.json"
    starts: list = []
    if path.exists():
        try:
            old = json.loads(path.read_text())
            starts = old.get("starts") or [{k: v for k, v in old.items() if k != "starts"}]
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            print(f"warning: {path} was unreadable; its start history starts again", file=sys.stderr)
    body = {**info, "starts": [*starts, info]}
    tmp = path.with_name("env.json.tmp")
    tmp.write_text(dumps(body, indent=2) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------- the writer's lock


class WorkdirLock:
    """One trainer per run directory: an exclusive flock on DIR/.lock holding the owner's pid and host.

    The kernel drops the lock when its process dies, so a stale lock (SIGKILL, crash) is simply taken over.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = self._holder() or "another process"
            raise UserError(
                f"{self.path.parent} is being trained by {holder}: wait for it to finish, stop it,"
                " or use another --workdir"
            ) from None
        previous = self._holder()
        if previous:
            print(
                f"note: taking over the stale lock of {previous}, which is no longer running", file=sys.stderr
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self.fd = fd

    def _holder(self) -> str:
        try:
            pid, _, host = self.path.read_text().strip().partition(" ")
        except OSError:
            return ""
        return f"process {pid} on {host}" if pid else ""

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # an empty lock file: nothing stale for the next writer to report
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> WorkdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
