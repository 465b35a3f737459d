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

import numpy as np


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


def write_png(rgb_HxWx3: Any, path: Path) -> Path:
    """A uint8 RGB image [H, W, 3] as a PNG file, replaced atomically (its folder made if missing): the one
    writer of the checkpoint images and of `jaxgen sample --out FILE.png`."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(np.asarray(rgb_HxWx3, np.uint8)).save(tmp, format="PNG")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- the trainer's logs


def _tensorboardx() -> tuple[Any, Any, Any]:
    """tensorboardX's event proto, CRC and summary module (scalar, image, text, hparams), imported without
    PyTorch: where torch is installed tensorboardX imports it (0.9 s on every jaxgen start) only to accept
    torch tensors, which jaxgen never passes."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        from tensorboardX import summary
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import masked_crc32c
    finally:
        if hide:
            del sys.modules["torch"]
    return event_pb2, masked_crc32c, summary


class EventFile:
    """TensorBoard summaries written synchronously into one event file (TFRecord) of this segment.

    tensorboardX's SummaryWriter hands events to a worker thread through a queue, and its flush() does not
    wait for that queue: a SIGKILL right after it lost the events. Here the caller writes every record;
    `flush` hands them to the OS at every chunk (what a SIGKILL cannot take back), `sync` also fsyncs, at
    checkpoints. The segment's first events are the file version and a SessionLog START at `purge_step`:
    TensorBoard hides what earlier segments logged at steps >= purge_step (redone after a resume).
    """

    def __init__(self, logdir: Path, purge_step: int):
        event_pb2, masked_crc32c, summary = _tensorboardx()

        logdir.mkdir(parents=True, exist_ok=True)
        self._pb, self._summary, self._crc = event_pb2, summary, masked_crc32c
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

    def add_summary(self, summary: Any, step: int) -> None:
        self._write(self._pb.Event(wall_time=time.time(), step=step, summary=summary))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.add_summary(self._summary.scalar(tag, value), step)

    def add_image(self, tag: str, rgb_HxWx3: Any, step: int) -> None:
        """One uint8 RGB image [H, W, 3] (PNG-encoded in the event)."""
        self.add_summary(self._summary.image(tag, rgb_HxWx3, dataformats="HWC"), step)

    def add_text(self, tag: str, markdown: str, step: int) -> None:
        """Text (markdown) for TensorBoard's Text tab, under the tag `tag`/text_summary."""
        self.add_summary(self._summary.text(tag, markdown), step)

    def add_hparams(self, hparams: dict[str, str | bool | float], metrics: list[str], step: int = 0) -> None:
        """The HParams tab's record of this run: its hyperparameters and the scalar tags (`metrics`) shown
        beside them (TensorBoard reads their values from this run's scalars)."""
        for summary in self._summary.hparams(hparams, {name: 0.0 for name in metrics}):
            self.add_summary(summary, step)

    def flush(self) -> None:
        self._file.flush()

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()


class Sinks:
    """metrics.jsonl (always) and TensorBoard event files, both flushed at every chunk.

    Opened after the logs were trimmed to `start_step` (0: a fresh start). A fresh start's TensorBoard
    segment hides everything an earlier, unfinished start logged (its SessionLog START is at step 0); a
    resumed one's, what came after the checkpoint it resumes from. `clock` times the rows."""

    def __init__(self, run_dir: Path, start_step: int):
        path = run_dir / "metrics.jsonl"
        # elapsed_s goes on from the last row kept: the run's training seconds over all its starts
        kept = [r["elapsed_s"] for r in metric_rows(path) if isinstance(r.get("elapsed_s"), (int, float))]
        self.elapsed_before = float(kept[-1]) if kept else 0.0
        self.jsonl = open(path, "a")  # noqa: SIM115 - closed in close()
        try:
            self.tb = EventFile(run_dir / "tb", purge_step=start_step + 1 if start_step else 0)
        except ImportError:  # TensorBoard files are a convenience; JSONL is the record
            self.tb = None
        self.t_start = self.t_row = time.perf_counter()
        self.paused_row = 0.0

    def clock(self, examples: int | None = None, paused_s: float = 0.0) -> dict[str, float | None]:
        """A row's `time` (unix seconds) and `elapsed_s` (the seconds this run has trained over all its
        starts: this start's so far, on top of the last row it kept); for a train row, `examples` (the
        chunk's) over the wall time since the last train row less what `paused_s` (the driver's compile,
        eval and checkpoint seconds so far) grew by: `samples_per_s`."""
        now = time.perf_counter()
        out: dict[str, float | None] = {
            "time": round(time.time(), 3),
            "elapsed_s": round(self.elapsed_before + now - self.t_start, 3),
        }
        if examples is not None:
            busy = now - self.t_row - (paused_s - self.paused_row)
            out["samples_per_s"] = round(examples / busy, 1) if busy > 0 else None
            self.t_row, self.paused_row = now, paused_s
        return out

    def write(self, step: int, values: dict[str, Any]) -> None:
        self.jsonl.write(dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                # lists (e.g. per-digit fractions) live in the JSONL only; so do the clock's times (every
                # event has its wall time)
                if isinstance(v, (int, float)) and math.isfinite(v) and k not in ("time", "elapsed_s"):
                    self.tb.add_scalar(k, float(v), step)

    def header(self, record: Path, metrics: list[str]) -> None:
        """A fresh run's TensorBoard record of what it runs (`record`: its resolved.json), written once, at
        step 0: the config's scalar keys as hyperparameters (lists as text) beside the headline `metrics`
        (tags of scalars it logs), and the whole config as JSON text."""
        if self.tb is None or not Path(record).exists():
            return
        config = json.loads(Path(record).read_text())
        hparams = {k: _hparam(v) for k, v in config.items() if _hparam(v) is not None}
        self.tb.add_hparams(hparams, metrics)
        self.tb.add_text("config", "```json\n" + dumps(config, indent=2) + "\n```", 0)

    def image(self, tag: str, rgb_HxWx3: Any, step: int, path: Path | None = None) -> None:
        """A uint8 RGB image [H, W, 3] in TensorBoard's Images tab at `step`, and as the PNG file `path`."""
        if self.tb is not None:
            self.tb.add_image(tag, rgb_HxWx3, step)
        if path is not None:
            write_png(rgb_HxWx3, path)

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


# The keys of metrics.jsonl rows that time them (Sinks.clock), not metrics: readers that draw or summarise
# metrics leave them out.
CLOCK_KEYS = ("time", "elapsed_s", "samples_per_s")


def _hparam(value: Any) -> str | bool | float | None:
    """A config value as a TensorBoard hyperparameter: strings, booleans and numbers as they are, a list
    as --set spells it (32,64); None (nested objects, null) where it has no scalar form."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
    return None


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
