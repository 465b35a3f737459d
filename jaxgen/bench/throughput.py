"""`jaxgen bench throughput`: training samples/s of every task against batch size, as `train` runs it.

The timed program is the driver's own compiled chunk (`chunks.run_chunk`, batch sharded over every device,
state donated), so the figures are what a training run gets. Compilation is timed apart; every timed call
ends in `block_until_ready`; mean ± std over repetitions. Writes DIR/throughput.{json,md,png}.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import chunks, data, models, runtime, tasks
from jaxgen.bench import common
from jaxgen.data import batches
from jaxgen.errors import UserError


@dataclasses.dataclass(frozen=True)
class ThroughputConfig:
    """What one throughput run measures; QUICK and FULL are the presets."""

    mode: str = "quick"
    hidden: tuple[tuple[int, ...], ...] = ((800, 800),)  # MLP shapes; (800, 800) is the default model
    batch_sizes: tuple[int, ...] = (32, 128, 512)
    steps: int = 50  # optimizer steps per timed call (one compiled chunk)
    reps: int = 5  # timed calls after one warm-up call
    # ae and gan at their default widths, on MNIST; "-conv": the task with arch=conv at its defaults
    tasks: tuple[str, ...] = ("mlp", "ae", "gan", "mlp-conv", "ae-conv", "gan-conv")
    conv_steps: int = 10  # conv tasks: steps per timed call (a conv step costs ~10-50 MLP steps on a CPU)
    conv_max_batch: int = 128  # conv tasks: batch sizes above this are not timed (CPU minutes each)
    ceiling_sizes: tuple[int, ...] = common.CEILING_SIZES  # square matmuls timed for the ceiling
    per_step: bool = True  # also time the same steps as a Python loop over a one-step program
    sizes: tuple[int, ...] = (4500, 60000)  # training-set sizes timed side by side (batch 128, each task)


QUICK = ThroughputConfig()
FULL = ThroughputConfig(
    mode="full",
    hidden=((256, 256), (512, 512), (800, 800), (2048, 2048), (1024,) * 4),
    batch_sizes=(32, 64, 128, 256, 512, 1024, 2048, 4096),
    steps=100,
    reps=10,
)


def _task(name: str, hidden: tuple[int, ...] | None, batch_size: int, ds: data.Dataset):
    """Task `name` ("mlp", or "mlp-conv" for its arch=conv variant) at its defaults and this batch size."""
    overrides: dict[str, Any] = {"batch_size": batch_size}
    if hidden is not None:
        overrides["hidden"] = hidden
    name, _, arch = name.partition("-")
    if arch:
        overrides["arch"] = arch
    cfg = tasks.make_config(name, overrides)
    return tasks.build(cfg, ds)


def for_task(cfg: ThroughputConfig, name: str) -> ThroughputConfig:
    """cfg as task `name` is timed: conv tasks with conv_steps steps per call."""
    return dataclasses.replace(cfg, steps=cfg.conv_steps) if name.endswith("-conv") else cfg


def placed(task, ds: data.Dataset) -> tuple[Any, tuple, batches.EpochShuffles, Any]:
    """(state, (train, data_key, loop_key), epoch shuffles, mesh): `task` on `ds` as the driver places it
    (seed 0); what `chunk` compiles against and `timed` feeds."""
    mesh = runtime.make_mesh()
    state, train_dev, data_key, loop_key = chunks.place(task, 0, data.split(ds, "train"), mesh)
    shuffler = batches.EpochShuffles(train_dev, data_key, task.examples_per_step, NamedSharding(mesh, P()))
    return state, (train_dev, data_key, loop_key), shuffler, mesh


def chunk(task, placement, length: int):
    """The driver's own compiled chunk of `length` steps (chunks.compile_chunk) for a `placed` task."""
    state, args, shuffler, mesh = placement
    return chunks.compile_chunk(
        task, task.examples_per_step, length, mesh, state, *args, shuffler.for_chunk(0, length)
    )


def timed(fn, state, args, shuffler, step: int, length: int, calls: int) -> tuple[Any, int, float]:
    """`calls` chunks of `length` steps from `step` on, each given its epoch shuffles as the driver gives
    them; returns (state, the next step, wall seconds until the state is ready)."""
    t0 = time.perf_counter()
    for _ in range(calls):
        state, *_ = fn(state, *args, shuffler.for_chunk(step, length))
        step += length
    jax.block_until_ready(state)
    return state, step, time.perf_counter() - t0


def step_flops(one_step) -> float:
    """The FLOPs XLA counts in a compiled one-step program."""
    cost = one_step.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0))


def program_bytes(compiled) -> int | None:
    """Device bytes a compiled program needs: arguments, outputs and temporaries, less what is donated."""
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    return int(
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        + mem.temp_size_in_bytes
        - mem.alias_size_in_bytes
    )


def _temp_bytes(compiled) -> int | None:
    """XLA's scratch memory of a compiled program: what must not grow with the training set."""
    mem = compiled.memory_analysis()
    return None if mem is None else int(mem.temp_size_in_bytes)


def sized_sets(sizes: tuple[int, ...]) -> list[tuple[data.Dataset, str]]:
    """Training sets of each size: the embedded sample (4,500), Fashion-MNIST's 60,000 where it is on this
    machine, else the embedded images repeated to the size (the same shapes and dtype: what the speed of a
    step could depend on)."""
    small = data.load("embedded")
    out = []
    for n in sizes:
        if n == len(small.train["label"]):
            out.append((small, "embedded"))
            continue
        try:
            big = data.load("fashion")
            if len(big.train["label"]) == n:
                out.append((big, "fashion"))
                continue
        except UserError:
            pass
        reps = -(-n // len(small.train["label"]))
        train = {k: np.concatenate([v] * reps)[:n] for k, v in small.train.items()}
        out.append((dataclasses.replace(small, train=train), f"embedded repeated to {n:,}"))
    return out


def size_scaling(cfg: ThroughputConfig, ceiling: dict[str, float]) -> list[dict[str, Any]]:
    """Each task at batch 128 on every training-set size of cfg.sizes, measured one after the other."""
    rows = []
    sets = sized_sets(cfg.sizes)
    for name in cfg.tasks:
        for ds, source in sets:
            r = measure(
                name, None, 128, dataclasses.replace(for_task(cfg, name), per_step=False), ds, ceiling
            )
            rows.append({**r, "data": source})
            rate = r["samples_per_s"]["mean"]
            common.log(f"  {name} on {r['train_examples']:,} images ({source}): {rate:.0f} samples/s")
    return rows


def measure(
    name: str, hidden: tuple[int, ...] | None, batch_size: int, cfg: ThroughputConfig, ds: data.Dataset,
    ceiling: dict[str, float] | None = None,
) -> dict:  # fmt: skip
    """Compile time, samples/s, FLOPs, memory and ceiling fraction of `cfg.steps` steps of task `name`."""
    task = _task(name, hidden, batch_size, ds)
    placement = placed(task, ds)
    state, args, shuffler, _ = placement

    t0 = time.perf_counter()
    compiled = chunk(task, placement, cfg.steps)
    compile_s = time.perf_counter() - t0
    one = chunk(task, placement, 1)
    flops_per_step = step_flops(one)
    state, step, _ = timed(compiled, state, args, shuffler, 0, cfg.steps, 1)  # warm-up
    seconds = []
    for _ in range(cfg.reps):
        state, step, t = timed(compiled, state, args, shuffler, step, cfg.steps, 1)
        seconds.append(t)
    loop_rate = None
    if cfg.per_step:
        state, step, _ = timed(one, state, args, shuffler, step, 1, 2)  # warm-up
        state, step, t = timed(one, state, args, shuffler, step, 1, cfg.steps)
        loop_rate = cfg.steps * batch_size / t
    rates = cfg.steps * batch_size / np.array(seconds)
    n_params = models.param_count(state.params)
    stats = jax.devices()[0].memory_stats() or {}
    model_flops_s = float(rates.mean()) * flops_per_step / batch_size
    return {
        "task": name,
        "hidden": list(getattr(task.cfg, "hidden", ())),
        "params": n_params,
        "batch_size": batch_size,
        "samples_per_s": {"mean": float(rates.mean()), "std": float(rates.std())},
        "step_ms": {
            "mean": float(1e3 * np.mean(seconds) / cfg.steps),
            "std": float(1e3 * np.std(seconds) / cfg.steps),
        },
        "per_step_loop_samples_per_s": loop_rate,
        "compile_s": compile_s,
        "flops_per_sample": flops_per_step / batch_size,
        "tflops": model_flops_s / 1e12,
        "ceiling_fraction": model_flops_s / ceiling["flops_per_s"] if ceiling else None,
        "program_bytes": program_bytes(compiled),
        "temp_bytes": _temp_bytes(compiled),
        "train_examples": int(len(data.split(ds, "train")["label"])),
        "peak_device_bytes": stats.get("peak_bytes_in_use"),
    }


def usable_batch_sizes(cfg: ThroughputConfig, n_train: int) -> list[int]:
    """The batch sizes of `cfg` that fit the training images and divide over the devices."""
    usable = [b for b in cfg.batch_sizes if b <= n_train and b % jax.device_count() == 0]
    if not usable:
        raise UserError(
            f"no batch size in {cfg.batch_sizes} fits {n_train} images on {jax.device_count()} devices"
        )
    return usable


def _progress(r: dict[str, Any]) -> str:
    rate, shape = r["samples_per_s"], "-".join(map(str, r["hidden"]))
    return (
        f"  {r['task']} {shape} batch {r['batch_size']}: {rate['mean']:.0f} ± {rate['std']:.0f} samples/s, "
        f"{r['ceiling_fraction']:.2f} of the ceiling, compile {r['compile_s']:.2f} s"
    )


def run(cfg: ThroughputConfig, out_dir: str | Path, *, plots: bool = True) -> dict[str, Any]:
    """Measure every (hidden, batch size) of `cfg`; write DIR/throughput.{json,md,png}; return the report."""
    t_start = time.perf_counter()
    ds = data.load("embedded")
    usable = usable_batch_sizes(cfg, len(data.split(ds, "train")["label"]))
    out = common.out_dir(out_dir)
    ceiling = common.gemm_ceiling(cfg.ceiling_sizes)
    common.log(f"  matrix-product ceiling: {ceiling['flops_per_s'] / 1e9:.1f} GFLOP/s")
    results = []
    shapes = [(t, h) for t in cfg.tasks for h in (cfg.hidden if t == "mlp" else (None,))]
    for name, hidden in shapes:
        conv = name.endswith("-conv")
        for b in usable:
            if conv and b > cfg.conv_max_batch:
                continue
            results.append(measure(name, hidden, b, for_task(cfg, name), ds, ceiling))
            common.log(_progress(results[-1]))
    report = {
        **common.header("throughput", cfg.mode, out),
        "config": dataclasses.asdict(cfg),
        "ceiling": ceiling,
        "skipped_batch_sizes": [b for b in cfg.batch_sizes if b not in usable],
        "results": results,
        "size_scaling": size_scaling(cfg, ceiling) if cfg.sizes else [],
    }
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    if plots:
        report["figures"] = [_plot(report, out / "throughput.png")]
    common.write_report(out, "throughput", report, markdown(report))
    return report


def markdown(report: dict) -> str:
    """A table of the report, device named."""
    c = report["ceiling"]
    lines = [
        "## Training throughput",
        "",
        f"`jaxgen bench throughput` ({report['mode']} mode) on {common.machine(report)}: "
        f"{report['wall_s']:.0f} s wall time. Each task's "
        f"default training step as `jaxgen train` compiles it ({report['config']['steps']} steps per "
        "scan-fused chunk, batches drawn on the device, state donated), compilation excluded, mean ± std "
        f"over {report['config']['reps']} timed calls. FLOP/sample is what XLA counts in one compiled step; "
        f"the ceiling is this device's best float32 matrix product in the same run ({c['n']}² matmuls: "
        f"{c['flops_per_s'] / 1e9:,.1f} GFLOP/s), and `of ceiling` the share of it the step's FLOPs reach. "
        "`loop` is the same steps run as a Python loop over a one-step program (dispatch per step).",
        "",
        "| task | hidden | params | batch | samples/s | ms/step | of ceiling | loop samples/s | FLOP/sample |"
        " program MB | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        s, ms = r["samples_per_s"], r["step_ms"]
        loop = r.get("per_step_loop_samples_per_s")
        mb = r.get("program_bytes")
        lines.append(
            f"| {r.get('task', 'mlp')} | {'-'.join(map(str, r['hidden']))} | {r['params']:,} | "
            f"{r['batch_size']} | "
            f"{s['mean']:,.0f} ± {s['std']:,.0f} | {ms['mean']:.2f} ± {ms['std']:.2f} | "
            f"{r['ceiling_fraction']:.2f} | {'–' if loop is None else f'{loop:,.0f}'} | "
            f"{r['flops_per_sample'] / 1e6:.2f} M | {'–' if mb is None else f'{mb / 2**20:.1f}'} | "
            f"{r['compile_s']:.2f} |"
        )
    if report["skipped_batch_sizes"]:
        lines += ["", f"Skipped batch sizes (larger than the data or not a multiple of the devices): "
                      f"{report['skipped_batch_sizes']}"]  # fmt: skip
    lines += _size_table(report.get("size_scaling", []))
    lines += ["", "![throughput.png](throughput.png)", ""] if report.get("figures") else [""]
    return "\n".join(lines)


def _size_table(rows: list[dict]) -> list[str]:
    """Samples/s and scratch memory of each task on a small and a large training set, side by side."""
    if not rows:
        return []
    lines = [
        "",
        "### The training set's size",
        "",
        "The same compiled chunk (batch 128) on training sets of different sizes, one after the other in this"
        " run: samples/s and XLA's scratch memory (`temp`, what a step allocates beyond its arguments) must"
        " not depend on the size; the arguments hold the training set itself.",
        "",
        "| task | training images | data | samples/s | ratio to the first | temp MB | program MB |",
        "|---|---|---|---|---|---|---|",
    ]
    first: dict[str, float] = {}
    for r in rows:
        rate, std = r["samples_per_s"]["mean"], r["samples_per_s"]["std"]
        base = first.setdefault(r["task"], rate)
        temp, prog = r.get("temp_bytes"), r.get("program_bytes")
        lines.append(
            f"| {r['task']} | {r['train_examples']:,} | {r['data']} | {rate:,.0f} ± {std:,.0f}"
            f" | {rate / base:.2f} | {'–' if temp is None else f'{temp / 2**20:.2f}'} |"
            f" {'–' if prog is None else f'{prog / 2**20:.1f}'} |"
        )
    return lines


def _plot(report: dict, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    shapes = sorted({(r.get("task", "mlp"), tuple(r["hidden"])) for r in report["results"]})
    for task, hidden in shapes:
        rows = [r for r in report["results"] if (r.get("task", "mlp"), tuple(r["hidden"])) == (task, hidden)]
        ax.errorbar([r["batch_size"] for r in rows], [r["samples_per_s"]["mean"] for r in rows],
                    yerr=[r["samples_per_s"]["std"] for r in rows], marker="o", capsize=3,
                    label=f"{task} " + "-".join(map(str, hidden)))  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("training samples/s")
    ax.set_title(f"training throughput (jaxgen train's compiled chunk)\n{report['device']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
