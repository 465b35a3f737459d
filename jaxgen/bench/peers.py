"""`jaxgen bench peers`: the training driver against the loops it should match, side by side in one run.

The same work everywhere: MLP 784-H-H-10 (ReLU), softmax cross-entropy, Adam, batch B, float32 parameters.
- driver: the whole command `jaxgen train mlp --set hidden=H,H --set dropout=0 --set augment=false
  --set ckpt_every=C --set batch_size=B --set steps=S`, timed as the difference between a short and a long
  run (start-up, compilation, the final evaluation, checkpoint and plots are in both and cancel); beside it
  the samples/s its own JSON summary reports (the training loop and its logging; no compile, eval, saves).
- jax_scan: the reference loop: every batch already on the device, one jitted `lax.scan` over an Adam
  step, state donated (what `../shared/peers/mlp_peers.py` calls jax_scan).
- jax_step: the same step jitted alone and dispatched from a Python loop.
- torch_eager: PyTorch doing the same work eagerly (when `import torch` works; skipped otherwise).
- torch_graph: the whole PyTorch step captured in one CUDA graph (CUDA only).
- ceiling: the device's best square float32 matrix product, as samples/s if every FLOP the model needs
  (6 x the weights per sample: forward and two backward products) ran at that rate.
Rounds interleave the loops, so noise from other jobs hits all of them alike: each figure is the median round
(with the best beside it) and each ratio is taken within a round, then its median over rounds. Writes
DIR/peers.{json,md}, rewritten after every round. The in-process loops live in jaxgen.bench.peer_loops;
this module runs the rounds and writes the report. The CNN and DCGAN rows (PeersConfig.cnn_steps,
dcgan_steps; jaxgen.bench.peer_dcgan) are sections of their own, against the same GEMM ceiling.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from jaxgen.bench import common, peer_dcgan, peer_loops
from jaxgen.bench.peer_loops import C, D
from jaxgen.errors import UserError


@dataclasses.dataclass(frozen=True)
class PeersConfig:
    mode: str = "full"
    hidden: int = 512
    batch_size: int = 128
    steps: int = 300  # steps per timed call of the in-process loops (x10 on accelerators)
    driver_steps: tuple[int, int] = (300, 2300)  # short and long run of the whole command (CPU)
    accel_driver_steps: tuple[int, int] = (1000, 51000)  # the same on a GPU/TPU (the step is ~50x faster)
    rounds: int = 3
    loops: tuple[str, ...] = ("driver", "jax_scan", "jax_step", "torch_eager", "torch_graph", "gemm_only")
    cnn_steps: int = 20  # CNN steps per timed call (x10 on accelerators); 0 = no CNN rows
    cnn_loops: tuple[str, ...] = ("cnn_chunk", "cnn_other_chunk", "cnn_xla_step", "cnn_torch_eager")
    dcgan_steps: int = 5  # DCGAN G+D steps per timed call (x10 on accelerators); 0 = no DCGAN rows
    dcgan_loops: tuple[str, ...] = ("dcgan_chunk", "dcgan_torch_eager")  # of peer_dcgan.LOOPS
    dcgan: peer_dcgan.Work = peer_dcgan.Work()  # 64x64x3, batch 64; peer_dcgan.RADFORD: the paper's widths


FULL = PeersConfig(rounds=5)
QUICK = PeersConfig(
    mode="quick", steps=100, driver_steps=(100, 1100), accel_driver_steps=(500, 10500), rounds=2, cnn_steps=5,
    dcgan_steps=2,
)  # fmt: skip


def flops_per_sample(hidden: int) -> int:
    """Matrix-product FLOPs one training sample needs, as the reference script counts them: 2 per
    multiply-add, forward + two backward products per layer (6 x the weights). No loop computes the first
    layer's input gradient, so the products executed are 2 x (2DH + 3HH + 3HC): 20 % fewer at H = 512."""
    return 2 * 3 * (D * hidden + hidden * hidden + hidden * C)


def executed_flops_per_sample(hidden: int) -> int:
    """The matrix-product FLOPs a training step executes per sample (no input gradient)."""
    return 2 * (2 * D * hidden + 3 * hidden * hidden + 3 * hidden * C)


def _median(values: list[float]) -> float:
    """Median of the finite values, NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def driver_command(hidden: int, batch: int, steps: int, ckpt_every: int) -> list[str]:
    """The `jaxgen train` arguments the driver row times (the issue's command, sized)."""
    sets = {
        "hidden": f"{hidden},{hidden}",
        "dropout": 0,
        "augment": "false",
        "ckpt_every": ckpt_every,
        "batch_size": batch,
        "steps": steps,
    }
    return ["train", "mlp", *(a for k, v in sets.items() for a in ("--set", f"{k}={v}"))]


def _run_driver(args: list[str], workdir: Path) -> tuple[float, dict]:
    """Wall seconds of one whole `python -m jaxgen` command and its JSON summary."""
    cmd = [sys.executable, "-m", "jaxgen", *args, "--workdir", str(workdir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise UserError(f"the driver run failed (exit {proc.returncode}): {tail[0]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


@dataclasses.dataclass
class Rounds:
    """One run's plan and what its interleaved rounds have measured so far."""

    cfg: PeersConfig
    out: Path
    t_start: float
    steps: int  # steps per timed call of the in-process loops
    short: int  # the driver's short and long runs
    long: int
    skipped: dict[str, str]  # loop -> why it cannot run here
    rates: dict[str, list[float]]  # loop -> samples/s of each round
    ceilings: list[float] = dataclasses.field(default_factory=list)  # FLOP/s of each round
    walls: dict[int, list[float]] = dataclasses.field(default_factory=dict)  # driver steps -> wall s
    summaries: dict[int, list[dict]] = dataclasses.field(default_factory=dict)  # driver JSON summaries

    def __post_init__(self) -> None:
        for s in (self.short, self.long):
            self.walls.setdefault(s, [])
            self.summaries.setdefault(s, [])

    @property
    def ckpt_every(self) -> int:
        return max(5000, self.long)  # neither run checkpoints before its end

    def driver_args(self, steps: int) -> list[str]:
        return driver_command(self.cfg.hidden, self.cfg.batch_size, steps, self.ckpt_every)


def _ratio(a: list[float], b: list[float] | None) -> float | None:
    """Median over rounds of a / b taken within each round; None without b."""
    return None if b is None else _median([x / y for x, y in zip(a, b, strict=True)])


def _driver_rounds(r: Rounds) -> tuple[list[float], dict[str, Any]]:
    """The driver's samples/s of each round (its own pair of runs: a difference of two noisy walls, NaN when
    the long run was not the slower) and the rest of its row."""
    extra = (r.long - r.short) * r.cfg.batch_size
    rates = [
        extra / (b - a) if b > a else math.nan for a, b in zip(r.walls[r.short], r.walls[r.long], strict=True)
    ]
    row = {
        "summary_samples_per_s": _median([s["samples_per_s"] for s in r.summaries[r.long]]),
        "walls_s": {str(r.short): r.walls[r.short], str(r.long): r.walls[r.long]},
        "compile_s": min(s["compile_s"] for s in r.summaries[r.long]),
        "command": "jaxgen " + " ".join(r.driver_args(r.long)),
    }
    return rates, row


def _loop_row(v: list[float], ceil_rates: list[float], per_round: dict[str, list[float]]) -> dict[str, Any]:
    """One loop's row: median and best round, share of the ceiling, ratios to the reference and to torch."""
    finite = [x for x in v if math.isfinite(x)]
    best_of = [x / c for x, c in zip(v, ceil_rates, strict=True) if math.isfinite(x)]
    return {
        "samples_per_s": _median(v),
        "best_samples_per_s": max(finite) if finite else math.nan,
        "rounds": v,
        "of_ceiling": _ratio(v, ceil_rates),
        "best_of_ceiling": max(best_of, default=math.nan),
        "vs_reference": _ratio(v, per_round.get("jax_scan")),
        "vs_torch_eager": _ratio(v, per_round.get("torch_eager")),
    }


def report_now(r: Rounds) -> dict[str, Any]:
    """The report of the rounds done so far, written to DIR/peers.{json,md} (after every round: a run
    stopped by a time box still leaves its figures)."""
    cfg = r.cfg
    fps = flops_per_sample(cfg.hidden)
    ceil_rates = [c / fps for c in r.ceilings]
    per_round: dict[str, list[float]] = dict(r.rates)
    rows: dict[str, dict[str, Any]] = {}
    if "driver" in cfg.loops:
        per_round["driver"], rows["driver"] = _driver_rounds(r)
    for k in ["driver", *r.rates]:
        if k in per_round and not k.startswith(("cnn_", "dcgan_")):
            rows[k] = {**rows.get(k, {}), **_loop_row(per_round[k], ceil_rates, per_round)}
    ceiling_flops = _median(r.ceilings)
    report = {
        **common.header("peers", cfg.mode, r.out),
        "config": dataclasses.asdict(cfg),
        "work": f"MLP {D}-{cfg.hidden}-{cfg.hidden}-{C} ReLU, softmax cross-entropy, Adam, "
        f"batch {cfg.batch_size}",
        "steps_per_call": r.steps,
        "driver_steps": [r.short, r.long],
        "flops_per_sample": fps,
        "executed_flops_per_sample": executed_flops_per_sample(cfg.hidden),
        "ceiling": {"flops_per_s": ceiling_flops, "samples_per_s": ceiling_flops / fps, "rounds": r.ceilings},
        "loops": rows,
        "skipped": r.skipped,
        "torch": peer_loops.torch_info()
        if any("torch" in k for k in (*cfg.loops, *cfg.cnn_loops, *cfg.dcgan_loops))
        else None,
        "rounds_done": len(r.ceilings),
    }
    if cfg.cnn_steps:
        report["cnn"] = cnn_report(r)
    if cfg.dcgan_steps:
        fps = peer_dcgan.flops_per_sample(cfg.dcgan)
        report["dcgan"] = peer_dcgan.section(cfg.dcgan, *_section_rows(r, "dcgan_", fps))
    report["wall_s"] = round(time.perf_counter() - r.t_start, 1)
    # strict JSON: a difference lost in noise (NaN) is written as null
    common.write_report(r.out, "peers", report, markdown(report))
    return report


def cnn_report(r: Rounds) -> dict[str, Any]:
    """The CNN rows: samples/s per loop, share of the same GEMM ceiling, ratio to PyTorch eager."""
    ccfg = peer_loops.cnn_config(r.cfg.batch_size, 2)
    fps = peer_loops.cnn_flops_per_sample(ccfg.channels, ccfg.head)
    ceiling, loops = _section_rows(r, "cnn_", fps)
    norm = "BatchNorm, " if ccfg.norm == "batch" else ""
    work = (
        "CNN 28x28x1 -> "
        + " -> ".join(f"conv3x3 {c}, {norm}ReLU, maxpool 2" for c in ccfg.channels)
        + f" -> dense {','.join(map(str, ccfg.head))} -> 10; softmax cross-entropy, Adam,"
        + f" batch {ccfg.batch_size}"
    )
    return {
        "work": work,
        "flops_per_sample": fps,
        "ceiling_samples_per_s": ceiling,
        "loops": loops,
    }


def _section_rows(r: Rounds, prefix: str, fps: float) -> tuple[float, dict[str, dict[str, Any]]]:
    """The ceiling in samples/s (at `fps` FLOPs per sample) and the rows of the loops named `prefix`...,
    each with its ratio to `prefix`torch_eager."""
    ceil_rates = [c / fps for c in r.ceilings]
    per_round = {k: v[: len(r.ceilings)] for k, v in r.rates.items() if k.startswith(prefix)}
    torch = per_round.get(f"{prefix}torch_eager")
    loops = {}
    for k, v in per_round.items():
        loops[k] = {**_loop_row(v, ceil_rates, {}), "vs_torch_eager": _ratio(v, torch)}
    return _median(ceil_rates), loops


def _timers(cfg: PeersConfig, steps: int) -> tuple[dict[str, Callable[[], float]], dict[str, str]]:
    """The in-process loops of `cfg` as timers, each called once (compiled, warmed up); the reason for each
    loop that cannot run here."""
    timers: dict[str, Callable[[], float]] = {}
    skipped: dict[str, str] = {}
    jax_loops = [k for k in peer_loops.JAX_LOOPS if k in cfg.loops]
    if jax_loops:
        made = peer_loops.jax_loops(cfg.hidden, cfg.batch_size, steps)
        timers.update({k: made[k] for k in jax_loops})
    torch_loops = tuple(k for k in peer_loops.TORCH_LOOPS if k in cfg.loops)
    if torch_loops:
        _sort(peer_loops.torch_loops(cfg.hidden, cfg.batch_size, steps, torch_loops), timers, skipped)
    if cfg.cnn_steps:
        cnn_steps = cfg.cnn_steps * (10 if jax.default_backend() != "cpu" else 1)
        cnn = [k for k in peer_loops.CNN_LOOPS if k in cfg.cnn_loops]
        if cnn:
            made = peer_loops.cnn_jax_loops(cfg.batch_size, cnn_steps)
            timers.update({k: made[k] for k in cnn})
        if "cnn_torch_eager" in cfg.cnn_loops:
            _sort({"cnn_torch_eager": peer_loops.cnn_torch_eager(cfg.batch_size, cnn_steps)}, timers, skipped)
    if cfg.dcgan_steps:
        _sort(peer_dcgan.timers(cfg.dcgan, cfg.dcgan_steps, cfg.dcgan_loops), timers, skipped)
    for fn in timers.values():  # compile / warm up once, untimed
        fn()
    return timers, skipped


def _sort(made: dict[str, Any], timers: dict[str, Callable[[], float]], skipped: dict[str, str]) -> None:
    """Each loop `made` into `timers` (a timer) or `skipped` (the reason it cannot run here)."""
    for k, v in made.items():
        (timers if callable(v) else skipped)[k] = v


def _round(r: Rounds, timers: dict[str, Callable[[], float]], tmp: Path, i: int) -> str:
    """One round: the ceiling, every timer, then the driver's short and long run; its progress line."""
    r.ceilings.append(common.gemm_ceiling(common.CEILING_SIZES, reps=5)["flops_per_s"])
    for k, fn in timers.items():
        r.rates[k].append(fn())
    line = ", ".join(f"{k} {v[-1]:,.0f}" for k, v in r.rates.items())
    if "driver" in r.cfg.loops:
        for s in (r.short, r.long):
            wall, summary = _run_driver(r.driver_args(s), tmp / f"r{i}-{s}")
            r.walls[s].append(wall)
            r.summaries[s].append(summary)
        line += f", driver runs {r.walls[r.short][-1]:.1f} s / {r.walls[r.long][-1]:.1f} s"
    return line


def run(cfg: PeersConfig, out_dir: str | Path, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every loop of `cfg` in interleaved rounds; write DIR/peers.{json,md}; return the report."""
    say = log or common.log
    t_start = time.perf_counter()
    accel = jax.default_backend() != "cpu"
    steps = cfg.steps * (10 if accel else 1)
    short, long_ = cfg.accel_driver_steps if accel else cfg.driver_steps
    if not 0 < short < long_:
        raise UserError(f"driver steps must be 0 < short < long, got {short}, {long_}")
    out = common.out_dir(out_dir)
    timers, skipped = _timers(cfg, steps)
    for k, why in skipped.items():
        say(f"  {k}: skipped ({why})")
    rounds = Rounds(cfg, out, t_start, steps, short, long_, skipped, {k: [] for k in timers})
    with tempfile.TemporaryDirectory(prefix="peers-", dir=out) as tmp:
        for i in range(cfg.rounds):
            line = _round(rounds, timers, Path(tmp), i)
            say(f"  round {i + 1}/{cfg.rounds}: {line}")
            report_now(rounds)
    return report_now(rounds)


LABELS = {
    "driver": "`jaxgen train mlp` (the whole command)",
    "jax_scan": "reference: jitted `lax.scan` over an Adam step",
    "jax_step": "jitted step, Python loop",
    "torch_eager": "PyTorch eager",
    "torch_graph": "PyTorch, whole step in one CUDA graph",
    "gemm_only": "the step's 8 matrix products alone (no activation, loss or optimizer): "
    "the bound at these shapes",
    "cnn_chunk": "jaxgen's CNN step (`arch=conv`, conv_impl=auto) in the driver's `lax.scan` chunk",
    "cnn_other_chunk": "the same chunk, the convolution auto does not pick here (cpu: xla; else: slices)",
    "cnn_xla_step": "the same step with XLA's convolution (conv_impl=xla), jitted alone, Python loop",
    "cnn_torch_eager": "PyTorch eager, same layers",
    **peer_dcgan.LABELS,
}


def markdown(report: dict) -> str:
    """The comparison table, device named."""
    cfg, ceil = report["config"], report["ceiling"]
    short, long_ = report["driver_steps"]
    done = report["rounds_done"]
    done = f"{done}" if done == cfg["rounds"] else f"{done} of the {cfg['rounds']} planned (stopped early)"
    lines = [
        "## The driver against its peers",
        "",
        f"`jaxgen bench peers` ({report['mode']} mode) on {common.machine(report)}"
        f"{', ' + report['torch'] if report.get('torch') else ''}, "
        f"{report['wall_s']:.0f} s wall time. Work: {report['work']}. {done} interleaved rounds: "
        "each figure is the median round (the best in brackets), each ratio taken within a round, then the "
        f"median over rounds. The driver's rate is {long_ - short:,} steps over the wall-time difference "
        f"of a {short:,}-step and a {long_:,}-step run of the whole command in the same round; `its "
        "summary` is the median of what its JSON summary reports for the long run (the timed chunks and "
        "their logging). Ceiling: the best square float32 matrix product of the round (median "
        f"{ceil['flops_per_s'] / 1e9:,.1f} GFLOP/s) over the {report['flops_per_sample'] / 1e6:.2f} M "
        "matrix-product FLOPs a sample needs (6 x the weights, as the reference script counts; the products "
        f"a step executes are {report['executed_flops_per_sample'] / 1e6:.2f} M, without the first layer's "
        f"input gradient) = {ceil['samples_per_s']:,.0f} samples/s. Reference: the jax_scan loop.",
        "",
        "| loop | samples/s, median round (best) | of ceiling (best round) | vs reference "
        "| vs PyTorch eager |",
        "|---|---|---|---|---|",
    ]

    x = _times
    for k, row in report["loops"].items():
        if not math.isfinite(row["samples_per_s"]):
            lines.append(f"| {LABELS.get(k, k)} | the long run was never slower than the short one: lost in "
                         "start-up noise, use more steps | | | |")  # fmt: skip
            continue
        rate = f"{row['samples_per_s']:,.0f} ({row['best_samples_per_s']:,.0f})"
        if k == "driver":
            rate += f"; its summary {row['summary_samples_per_s']:,.0f}"
        of = f"{row['of_ceiling']:.2f} ({row['best_of_ceiling']:.2f})"
        lines.append(
            f"| {LABELS.get(k, k)} | {rate} | {of} | {x(row['vs_reference'])} | {x(row['vs_torch_eager'])} |"
        )
    lines.append(f"| matrix-product ceiling | {ceil['samples_per_s']:,.0f} | 1.00 | | |")
    for k, why in report["skipped"].items():
        lines.append(f"| {LABELS.get(k, k)} | skipped: {why} | | | |")
    if "driver" in report["loops"]:
        lines += ["", f"Driver command: `{report['loops']['driver']['command']}` (and `steps={short}`)."]
    if "cnn" in report:
        lines += _cnn_markdown(report, _times)
    if "dcgan" in report:
        lines += peer_dcgan.markdown(report, _times)
    return "\n".join(lines) + "\n"


def _times(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.2f}x"


def _cnn_markdown(report: dict, x) -> list[str]:
    """The CNN step's table (markdown's second section)."""
    cnn, cfg = report["cnn"], report["config"]
    lines = [
        "",
        "### The CNN step",
        "",
        f"Work: {cnn['work']}. Ceiling: the same GEMM rate over {cnn['flops_per_sample'] / 1e6:.1f} M "
        "matrix-product FLOPs per sample (3 x the forward products) = "
        f"{cnn['ceiling_samples_per_s']:,.0f} samples/s.",
        "",
        "| loop | samples/s, median round (best) | ms per step | of ceiling (best round) "
        "| vs PyTorch eager |",
        "|---|---|---|---|---|",
    ]
    for k, row in cnn["loops"].items():
        ms = 1e3 * cfg["batch_size"] / row["samples_per_s"] if row["samples_per_s"] else math.nan
        rate = f"{row['samples_per_s']:,.0f} ({row['best_samples_per_s']:,.0f})"
        of = f"{row['of_ceiling']:.2f} ({row['best_of_ceiling']:.2f})"
        lines.append(f"| {LABELS.get(k, k)} | {rate} | {ms:.1f} | {of} | {x(row['vs_torch_eager'])} |")
    for k, why in report["skipped"].items():
        if k.startswith("cnn_"):
            lines.append(f"| {LABELS.get(k, k)} | skipped: {why} | | | |")
    return lines
