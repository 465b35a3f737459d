"""`jaxgen bench throughput`: training samples/s of the MLP task against batch size, as `train` runs it.

The timed program is the driver's own compiled chunk (`train.run_chunk`, batch sharded over every device,
state donated), so the figures are what a training run gets. Compilation is timed apart; every timed call
ends in `block_until_ready`; mean ± std over repetitions. Writes DIR/throughput.{json,md,png}.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxgen import config, data, models, tasks, train
from jaxgen.errors import UserError


@dataclasses.dataclass(frozen=True)
class ThroughputConfig:
    """What one throughput run measures; QUICK and FULL are the presets."""

    mode: str = "quick"
    hidden: tuple[tuple[int, ...], ...] = ((800, 800),)  # MLP shapes; (800, 800) is the default model
    batch_sizes: tuple[int, ...] = (32, 128, 512)
    steps: int = 50  # optimizer steps per timed call (one compiled chunk)
    reps: int = 5  # timed calls after one warm-up call


QUICK = ThroughputConfig()
FULL = ThroughputConfig(
    mode="full",
    hidden=((256, 256), (800, 800), (2048, 2048), (1024,) * 4),
    batch_sizes=(32, 64, 128, 256, 512, 1024, 2048, 4096),
    steps=100,
    reps=10,
)


def measure(hidden: tuple[int, ...], batch_size: int, cfg: ThroughputConfig, ds: data.Dataset) -> dict:
    """Compile time and samples/s of `cfg.steps` training steps of the default MLP task at this shape."""
    mlp = config.make("mlp", {"hidden": hidden, "batch_size": batch_size})
    task = tasks.build("mlp", mlp, ds)
    mesh = train.make_mesh()
    state, train_dev, data_key, loop_key = train.place(task, 0, data.split(ds, "train"), mesh)
    t0 = time.perf_counter()
    compiled = train.compile_chunk(task, batch_size, cfg.steps, mesh, state, train_dev, data_key, loop_key)
    compile_s = time.perf_counter() - t0
    state, *_ = jax.block_until_ready(compiled(state, train_dev, data_key, loop_key))  # warm-up
    seconds = []
    for _ in range(cfg.reps):
        t0 = time.perf_counter()
        state, *_ = jax.block_until_ready(compiled(state, train_dev, data_key, loop_key))
        seconds.append(time.perf_counter() - t0)
    rates = cfg.steps * batch_size / np.array(seconds)
    n_params = models.param_count(state.params)
    # A dense layer's forward + backward is ~6 flops per weight per example (2 forward, 4 backward).
    flops_per_sample = 6 * n_params
    return {
        "hidden": list(hidden),
        "params": n_params,
        "batch_size": batch_size,
        "samples_per_s": {"mean": float(rates.mean()), "std": float(rates.std())},
        "step_ms": {
            "mean": float(1e3 * np.mean(seconds) / cfg.steps),
            "std": float(1e3 * np.std(seconds) / cfg.steps),
        },
        "compile_s": compile_s,
        "tflops": float(rates.mean() * flops_per_sample / 1e12),
    }


def run(cfg: ThroughputConfig, out_dir: str | Path, *, plots: bool = True) -> dict[str, Any]:
    """Measure every (hidden, batch size) of `cfg`; write DIR/throughput.{json,md,png}; return the report."""
    t_start = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out_dir} is a file: name a directory")
    ds = data.load("embedded")
    n_train = len(data.split(ds, "train")["label"])
    usable = [b for b in cfg.batch_sizes if b <= n_train and b % jax.device_count() == 0]
    if not usable:
        raise UserError(
            f"no batch size in {cfg.batch_sizes} fits {n_train} images on {jax.device_count()} devices"
        )
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for hidden in cfg.hidden:
        for b in usable:
            r = measure(hidden, b, cfg, ds)
            results.append(r)
            rate = r["samples_per_s"]
            msg = f"  hidden {hidden} batch {b}: {rate['mean']:.0f} ± {rate['std']:.0f} samples/s"
            print(f"{msg}, compile {r['compile_s']:.2f} s", file=sys.stderr, flush=True)
    from jaxgen import bench_report

    report = {
        **bench_report.header("throughput", cfg.mode, out),
        "config": dataclasses.asdict(cfg),
        "skipped_batch_sizes": [b for b in cfg.batch_sizes if b not in usable],
        "results": results,
    }
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    if plots:
        report["figures"] = [_plot(report, out / "throughput.png")]
    (out / "throughput.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "throughput.md").write_text(markdown(report))
    return report


def markdown(report: dict) -> str:
    """A table of the report, device named."""
    lines = [
        "## Training throughput",
        "",
        f"`jaxgen bench throughput` ({report['mode']} mode) on **{report['device']}** (backend "
        f"`{report['backend']}`, {report['num_devices']} device(s), jax {report['env']['jax']}): "
        f"{report['wall_s']:.0f} s wall time. The default MLP task's compiled training chunk "
        f"({report['config']['steps']} steps: batch, affine augmentation, dropout, AdamW), compilation "
        f"excluded, mean ± std over {report['config']['reps']} timed calls. TFLOP/s counts 6 flops per "
        "weight per sample (dense forward + backward) and ignores the augmentation.",
        "",
        "| hidden | params | batch | samples/s | ms/step | TFLOP/s | compile s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        s, ms = r["samples_per_s"], r["step_ms"]
        lines.append(
            f"| {'-'.join(map(str, r['hidden']))} | {r['params']:,} | {r['batch_size']} | "
            f"{s['mean']:,.0f} ± {s['std']:,.0f} | {ms['mean']:.2f} ± {ms['std']:.2f} | {r['tflops']:.3f} | "
            f"{r['compile_s']:.2f} |"
        )
    if report["skipped_batch_sizes"]:
        lines += ["", f"Skipped batch sizes (larger than the data or not a multiple of the devices): "
                      f"{report['skipped_batch_sizes']}"]  # fmt: skip
    lines += ["", "![throughput.png](throughput.png)", ""] if report.get("figures") else [""]
    return "\n".join(lines)


def _plot(report: dict, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    shapes = sorted({tuple(r["hidden"]) for r in report["results"]}, key=lambda h: (len(h), h))
    for hidden in shapes:
        rows = [r for r in report["results"] if tuple(r["hidden"]) == hidden]
        ax.errorbar([r["batch_size"] for r in rows], [r["samples_per_s"]["mean"] for r in rows],
                    yerr=[r["samples_per_s"]["std"] for r in rows], marker="o", capsize=3,
                    label="784-" + "-".join(map(str, hidden)) + "-10")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("training samples/s")
    ax.set_title(f"MLP training throughput\n{report['device']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
