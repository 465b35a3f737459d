"""Run directories: config.json, env.json history, metrics.jsonl, the writer's lock.

Everything here is host-side file handling that both the driver (the one writer) and the readers (eval,
sample, plot) use; a reader never writes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import platform
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from jaxgen import config as config_lib
from jaxgen.errors import UserError

LOCK = ".lock"


def load_run(run_dir: Path) -> tuple[str, str, config_lib.TrainConfig]:
    """(task, data spec, config) saved in a run directory; a damaged config.json is a one-line error."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise UserError(
            f"{run_dir} holds no run (no config.json): train one with jaxgen train TASK --workdir DIR"
        )
    fix = "restore it (jaxgen config TASK prints a fresh one) or use another --workdir"
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({' '.join(str(err).split())[:80]}): {fix}") from None
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror}): {fix}") from None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("task"), str)
        or not isinstance(raw.get("data"), str)
    ):
        raise UserError(f'{path} must be a JSON object with "task" and "data" strings: {fix}')
    task, spec = raw.pop("task"), raw.pop("data")
    from jaxgen.tasks import TASKS

    if task not in TASKS:
        raise UserError(f"{path} names task {task!r}, which this jaxgen does not have ({', '.join(TASKS)})")
    try:
        cfg = config_lib.from_dict(task, raw)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    return task, spec, cfg


def check_same_run(run_dir: Path, task: str, spec: str, cfg: config_lib.TrainConfig) -> None:
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


# ---------------------------------------------------------------- metrics.jsonl


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: write null for them (nested lists and dicts too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def dumps(value: Any, **kw: Any) -> str:
    """Strict JSON (non-finite numbers as null)."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kw)


def metric_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of metrics.jsonl; a line cut short by a kill (or any unreadable line) is skipped."""
    rows = []
    if Path(path).exists():
        for line in Path(path).read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                rows.append(row)
    return rows


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows up to `step` (the resumed checkpoint): what comes after will be logged again."""
    path = Path(path)
    if not path.exists():
        return
    rows = [r for r in metric_rows(path) if r["step"] <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(dumps(r) + "\n" for r in rows))
    tmp.replace(path)  # atomic: a kill here leaves the old file or the new one, never half of one


# ---------------------------------------------------------------- the trainer's logs


def _tensorboardx() -> tuple[Any, Any, Any]:
    """tensorboardX's event proto, CRC and scalar summary, imported without PyTorch: where torch is
    installed tensorboardX imports it (0.9 s on every jaxgen start) only to accept torch tensors, which
    jaxgen never passes."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import masked_crc32c
        from tensorboardX.summary import scalar
    finally:
        if hide:
            del sys.modules["torch"]
    return event_pb2, masked_crc32c, scalar


class EventFile:
    """TensorBoard scalars written synchronously into one event file (TFRecord) of this segment.

    tensorboardX's SummaryWriter hands events to a worker thread through a queue, and its flush() does not
    wait for that queue: a SIGKILL right after it lost the events. Here the caller writes every record;
    `flush` hands them to the OS at every chunk (what a SIGKILL cannot take back), `sync` also fsyncs, at
    checkpoints. The segment's first events are the file version and a SessionLog START at `purge_step`:
    TensorBoard hides what earlier segments logged at steps >= purge_step (redone after a resume).
    """

    def __init__(self, logdir: Path, purge_step: int):
        event_pb2, masked_crc32c, scalar = _tensorboardx()

        logdir.mkdir(parents=True, exist_ok=True)
        self._pb, self._scalar, self._crc = event_pb2, scalar, masked_crc32c
        # A time_ns suffix: two segments started in the same second get distinct files, in order.
        name = f"events.out.tfevents.{int(time.time()):010d}.{platform.node()}.{time.time_ns()}"
        self._file = open(logdir / name, "ab")  # noqa: SIM115 - closed in close()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
        self._write(event_pb2.Event(wall_time=time.time(), step=purge_step, session_log=start))

    def _write(self, event: Any) -> None:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        record = header + struct.pack("<I", self._crc(header)) + data + struct.pack("<I", self._crc(data))
        self._file.write(record)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._write(self._pb.Event(wall_time=time.time(), step=step, summary=self._scalar(tag, value)))

    def flush(self) -> None:
        self._file.flush()

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()


class Sinks:
    """metrics.jsonl (always) and TensorBoard event files, both flushed at every chunk."""

    def __init__(self, run_dir: Path, start_step: int):
        self.jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in close()
        try:
            self.tb = EventFile(run_dir / "tb", purge_step=start_step + 1)
        except ImportError:  # TensorBoard files are a convenience; JSONL is the record
            self.tb = None

    def write(self, step: int, values: dict[str, Any]) -> None:
        self.jsonl.write(dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                # lists (e.g. per-digit fractions) live in the JSONL only
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, float(v), step)

    def flush(self, sync: bool = False) -> None:
        """End of a chunk: a SIGKILL from here on loses at most the next chunk; `sync` (at checkpoints)
        also survives a power cut."""
        self.jsonl.flush()
        if sync:
            os.fsync(self.jsonl.fileno())
        if self.tb is not None and sync:
            self.tb.sync()
        elif self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


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
