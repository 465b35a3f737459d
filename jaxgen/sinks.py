"""The run's record as it is written and read back: strict JSON, metrics.jsonl rows, TensorBoard event files.

Host-side file handling only (no JAX, no task): the driver writes through `Sinks`; plots, eval and the
benchmarks read with `metric_rows` and write reports with `dumps`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import struct
import sys
import time
from pathlib import Path
from typing import Any


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


class Progress:
    """What a training run shows on stderr as it goes (stdout stays clean for the JSON summary).

    On a terminal, a tqdm bar; elsewhere (a log file, a pipe, a batch job), one plain line per chunk:
    step, epoch, the headline metrics, samples/s and the time left, so a redirected log reads well.
    """

    def __init__(self, enabled: bool, start: int, total: int, name: str, epoch_steps: float, per_step: int):
        self.enabled, self.step, self.total, self.name = enabled, start, total, name
        self.epoch_steps, self.per_step = epoch_steps, per_step
        self.tty = enabled and sys.stderr.isatty()
        self.bar = None
        if self.tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=name, unit="step", file=sys.stderr)
        self.t_last, self.step_last = time.perf_counter(), start

    def chunk(self, step: int, length: int, headline: dict[str, float]) -> None:
        """A chunk ending at `step` was read; `headline`: its mean headline metrics."""
        self.step = step
        if not self.enabled:
            return
        shown = {k: f"{v:.4f}" for k, v in headline.items()}
        if self.bar is not None:
            self.bar.update(length)
            self.bar.set_postfix(shown)
            return
        now = time.perf_counter()
        rate = (step - self.step_last) / max(now - self.t_last, 1e-9)  # steps/s, compile and eval included
        self.t_last, self.step_last = now, step
        left = (self.total - step) / rate if rate > 0 else float("nan")
        metrics = " ".join(f"{k} {v}" for k, v in shown.items())
        print(
            f"{self.name} step {step}/{self.total} epoch {step / self.epoch_steps:.2f} {metrics}"
            f" {rate * self.per_step:,.0f} samples/s {_duration(left)} left",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    """e.g. 3m05s, 1h02m, or ? when unknown."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
