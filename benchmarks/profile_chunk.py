"""Where a training step's time goes: the driver's compiled chunk against the reference `lax.scan` loop of
`jaxgen bench peers`, each traced with `jax.profiler` and its executed ops summed from the trace, plus the
default MLP's start-up cost taken apart (issue 19: the GPU profile and the time to first step).

    python benchmarks/profile_chunk.py [--hidden 512] [--batch 128] [--steps 200] [--out DIR] [--first-step]

For each loop: wall ms per step, the summed time of the ops the backend executed (on a GPU: the kernels on
its streams, named by their XLA op), ops per step, and the 12 ops that took longest. Wall minus op time is
what launches, host syncs and idle gaps cost. `--first-step` also times, each in a fresh process (cache
cold): importing jaxgen, starting the backend, and `jaxgen train mlp` at its defaults (its compile_s and
wall_s). Writes DIR/profile.{json,md}; the traces themselves stay in DIR/traces/ (not needed back).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax

from jaxgen import data, runtime, tasks
from jaxgen.bench import common, peer_loops, throughput

TOP = 12


def op_times(trace_dir: Path) -> dict[str, Any]:
    """The executed ops of the one perfetto trace under trace_dir: {total_us, count, by_op: {name: [us, n]}}.

    An op event is one that names its XLA op (args.hlo_op). Where any such event sits on a device process
    ("/device:..."), only those count (GPU kernels), else the host's (the CPU backend runs ops there)."""
    (path,) = sorted(trace_dir.glob("**/perfetto_trace.json.gz"))[-1:]
    with gzip.open(path) as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    process = {e["pid"]: e.get("args", {}).get("name", "") for e in events if e.get("name") == "process_name"}
    ops = [e for e in events if e.get("ph") == "X" and "hlo_op" in e.get("args", {})]
    on_device = [e for e in ops if process.get(e.get("pid"), "").startswith("/device:")]
    ops = on_device or ops
    by_op: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for e in ops:
        key = f"{e['args']['hlo_op']} ({e['name']})" if e["name"] != e["args"]["hlo_op"] else e["name"]
        by_op[key][0] += float(e.get("dur", 0.0))
        by_op[key][1] += 1
    return {
        "total_us": sum(v[0] for v in by_op.values()),
        "count": sum(v[1] for v in by_op.values()),
        "where": "device" if on_device else "host",
        "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1][0])),
    }


def traced(name: str, call, steps: int, out: Path) -> dict[str, Any]:
    """Warm `call` (one chunk of `steps` steps) once, then trace one more call; the loop's row."""
    call()
    trace_dir = out / "traces" / name
    t0 = time.perf_counter()
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        call()
    wall = time.perf_counter() - t0
    ops = op_times(trace_dir)
    return {
        "loop": name,
        "wall_ms_per_step": 1e3 * wall / steps,
        "op_ms_per_step": ops["total_us"] / 1e3 / steps,
        "ops_per_step": ops["count"] / steps,
        "ops_where": ops["where"],
        "top_ops": [
            {"op": k, "ms_per_step": v[0] / 1e3 / steps, "calls_per_step": v[1] / steps}
            for k, v in list(ops["by_op"].items())[:TOP]
        ],
    }


def driver_call(hidden: int, batch: int, steps: int):
    """One call of the driver's own compiled chunk: `jaxgen train mlp --set hidden=H,H --set dropout=0 --set
    augment=false` at this batch, on the embedded data, epoch shuffles given as the driver gives them."""
    cfg = tasks.make_config(
        "mlp", {"hidden": (hidden, hidden), "dropout": 0.0, "augment": False, "batch_size": batch}
    )
    ds = data.load("embedded")
    task = tasks.build(tasks.resolve(cfg, ds), ds)
    placement = throughput.placed(task, ds)
    fn = throughput.chunk(task, placement, steps)
    box = {"state": placement[0], "step": 0}

    def call() -> None:
        box["state"], box["step"], _ = throughput.timed(
            fn, box["state"], *placement[1:3], box["step"], steps, 1
        )

    return call


def reference_call(hidden: int, batch: int, steps: int):
    """One call of bench peers' reference loop (jax_scan: one jitted `lax.scan` over an Adam step)."""
    return peer_loops.jax_loops(hidden, batch, steps)["jax_scan"]


def first_step(workdir: Path) -> dict[str, Any]:
    """Start-up cost, each part in a fresh process: import, backend start, the default MLP's compile, wall."""

    def seconds(code: str) -> float:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return float(proc.stdout.strip().splitlines()[-1])

    clock = "import time; t = time.perf_counter(); "
    out = {
        "import_jaxgen_s": seconds(clock + "import jaxgen.cli, jaxgen.train; print(time.perf_counter() - t)"),
        "backend_start_s": seconds(clock + "import jax; jax.devices(); print(time.perf_counter() - t)"),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "jaxgen", "train", "mlp", "--no-plots", "--workdir", str(workdir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out["process_s"] = time.perf_counter() - t0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update({k: summary.get(k) for k in ("wall_s", "compile_s", "samples_per_s", "step", "device")})
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def markdown(report: dict[str, Any]) -> str:
    h, b, n = report["hidden"], report["batch"], report["steps"]
    lines = [
        "## Where a step's time goes",
        "",
        f"Device: {report['device']}. MLP 784-{h}-{h}-10, batch {b}, one traced call of {n} steps after a"
        " warm-up call (`benchmarks/profile_chunk.py`). Op time: the executed ops summed from the trace"
        " (on a GPU the kernels on its streams); wall minus op time is launches, syncs and gaps.",
        "",
        "| loop | wall ms/step | op ms/step | ops/step |",
        "|---|---:|---:|---:|",
    ]
    for r in report["loops"]:
        wall, op, n_ops = r["wall_ms_per_step"], r["op_ms_per_step"], r["ops_per_step"]
        lines.append(f"| {r['loop']} | {wall:.4f} | {op:.4f} | {n_ops:.1f} |")
    for r in report["loops"]:
        lines += [
            "",
            f"### {r['loop']}: the {TOP} longest ops ({r['ops_where']})",
            "",
            "| op | ms/step | calls/step |",
        ]
        lines.append("|---|---:|---:|")
        lines += [
            f"| `{o['op'][:90]}` | {o['ms_per_step']:.4f} | {o['calls_per_step']:.2f} |" for o in r["top_ops"]
        ]
    if report.get("first_step"):
        fs = report["first_step"]
        lines += ["", "### Start-up of the default MLP (fresh processes, cache cold)", ""]
        lines += [f"- {k}: {v}" for k, v in fs.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", default="runs/profile")
    p.add_argument("--first-step", action="store_true")
    args = p.parse_args()
    out = common.out_dir(args.out)
    loops = []
    for name, make in (("driver", driver_call), ("jax_scan", reference_call)):
        loops.append(traced(name, make(args.hidden, args.batch, args.steps), args.steps, out))
        r = loops[-1]
        common.log(f"  {name}: {r['wall_ms_per_step']:.4f} ms/step wall, {r['op_ms_per_step']:.4f} in ops")
    report = {
        **common.header("profile", "full", out),
        "device": runtime.device_name(),
        "hidden": args.hidden,
        "batch": args.batch,
        "steps": args.steps,
        "loops": loops,
    }
    if args.first_step:
        with tempfile.TemporaryDirectory() as tmp:
            report["first_step"] = first_step(Path(tmp) / "mlp")
    common.write_report(out, "profile", report, markdown(report))
    print(json.dumps({"out": str(out), **{r["loop"]: round(r["wall_ms_per_step"], 4) for r in loops}}))


if __name__ == "__main__":
    main()
