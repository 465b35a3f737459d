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
DIR/peers.{json,md}, rewritten after every round.
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
import numpy as np

from jaxgen import sinks
from jaxgen.errors import UserError

D, C = 784, 10


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


FULL = PeersConfig(rounds=5)
QUICK = PeersConfig(
    mode="quick", steps=100, driver_steps=(100, 1100), accel_driver_steps=(500, 10500), rounds=2
)


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


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, D), dtype=np.float32), rng.integers(0, C, n).astype(np.int32)


def _jax_loops(hidden: int, batch: int, steps: int) -> dict[str, Callable[[], float]]:
    """jax_scan, jax_step and gemm_only timers (each call: `steps` steps, returns samples/s)."""
    import flax.linen as nn
    import jax.numpy as jnp
    import optax

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(hidden)(x))
            x = nn.relu(nn.Dense(hidden)(x))
            return nn.Dense(C)(x)

    model, tx = MLP(), optax.adam(1e-3)

    def step(carry, xy):
        params, opt = carry

        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xy[0]), xy[1]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), loss

    def fresh():
        params = model.init(jax.random.key(0), jnp.zeros((1, D)))
        return params, tx.init(params)

    x, y = _data(steps * batch)
    X, Y = jnp.asarray(x).reshape(steps, batch, D), jnp.asarray(y).reshape(steps, batch)
    scan = jax.jit(lambda c, X, Y: jax.lax.scan(step, c, (X, Y)), donate_argnums=0)
    one = jax.jit(step, donate_argnums=0)
    box = {"scan": fresh(), "step": fresh()}

    def products(Ws, x):
        """The step's matrix products alone, at its shapes: 3 forward, 5 backward (no input gradient)."""
        W1, W2, W3 = Ws
        h1 = x @ W1
        h2 = h1 @ W2
        d3 = h2 @ W3  # stands in for dL/dlogits
        d2 = d3 @ W3.T
        d1 = d2 @ W2.T
        grads = (x.T @ d1, h1.T @ d2, h2.T @ d3)
        # a tiny update keeps each step dependent on the last
        return tuple(W - 1e-9 * g for W, g in zip(Ws, grads, strict=True)), d3[0, 0]

    gemm = jax.jit(lambda Ws, X: jax.lax.scan(products, Ws, X), donate_argnums=0)
    keys = jax.random.split(jax.random.key(1), 3)
    box["gemm"] = tuple(
        0.01 * jax.random.normal(k, s)
        for k, s in zip(keys, ((D, hidden), (hidden, hidden), (hidden, C)), strict=True)
    )

    def time_gemm() -> float:
        t0 = time.perf_counter()
        box["gemm"], last = gemm(box["gemm"], X)
        last.block_until_ready()
        return steps * batch / (time.perf_counter() - t0)

    def time_scan() -> float:
        t0 = time.perf_counter()
        box["scan"], losses = scan(box["scan"], X, Y)
        losses.block_until_ready()
        return steps * batch / (time.perf_counter() - t0)

    def time_step() -> float:
        t0 = time.perf_counter()
        c = box["step"]
        for i in range(steps):
            c, loss = one(c, (X[i], Y[i]))
        loss.block_until_ready()
        box["step"] = c
        return steps * batch / (time.perf_counter() - t0)

    return {"jax_scan": time_scan, "jax_step": time_step, "gemm_only": time_gemm}


def _torch_loops(hidden: int, batch: int, steps: int, which: tuple[str, ...]) -> dict[str, Any]:
    """torch_eager (and on CUDA torch_graph) timers; a reason string for each one that cannot run."""
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - any import failure means "not installed here"
        why = f"torch not importable ({type(err).__name__}): pip install 'jaxgen[peers]' to compare"
        return {k: why for k in which}
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    x, y = _data(steps * batch)
    X, Y = torch.from_numpy(x).to(dev), torch.from_numpy(y).long().to(dev)
    lossf = torch.nn.CrossEntropyLoss()

    def mlp():
        L = torch.nn.Linear
        return torch.nn.Sequential(
            L(D, hidden), torch.nn.ReLU(), L(hidden, hidden), torch.nn.ReLU(), L(hidden, C)
        ).to(dev)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    out: dict[str, Any] = {}
    if "torch_eager" in which:
        m = mlp()
        opt = torch.optim.Adam(m.parameters(), 1e-3)

        def eager_step(i):
            opt.zero_grad(set_to_none=True)
            loss = lossf(m(X[i * batch : (i + 1) * batch]), Y[i * batch : (i + 1) * batch])
            loss.backward()
            opt.step()
            return loss

        def time_eager() -> float:
            sync()
            t0 = time.perf_counter()
            for i in range(steps):
                loss = eager_step(i)
            float(loss.detach())
            sync()
            return steps * batch / (time.perf_counter() - t0)

        for i in range(3):
            eager_step(i)
        out["torch_eager"] = time_eager
    if "torch_graph" in which:
        if not cuda:
            out["torch_graph"] = "CUDA graphs need a CUDA device"
        else:
            m = mlp()
            opt = torch.optim.Adam(m.parameters(), 1e-3, capturable=True)
            sx, sy = X[:batch].clone(), Y[:batch].clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    opt.zero_grad(set_to_none=True)
                    lossf(m(sx), sy).backward()
                    opt.step()
            torch.cuda.current_stream().wait_stream(s)
            graph = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                lossf(m(sx), sy).backward()
                opt.step()

            def time_graph() -> float:
                sync()
                t0 = time.perf_counter()
                for i in range(steps):
                    sx.copy_(X[i * batch : (i + 1) * batch])
                    sy.copy_(Y[i * batch : (i + 1) * batch])
                    graph.replay()
                sync()
                return steps * batch / (time.perf_counter() - t0)

            out["torch_graph"] = time_graph
    return out


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


def run(cfg: PeersConfig, out_dir: str | Path, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every loop of `cfg` in interleaved rounds; write DIR/peers.{json,md}; return the report."""
    from jaxgen import bench_report, bench_throughput

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out_dir} is a file: name a directory")
    accel = jax.default_backend() != "cpu"
    steps = cfg.steps * (10 if accel else 1)
    short, long_ = cfg.accel_driver_steps if accel else cfg.driver_steps
    if not 0 < short < long_:
        raise UserError(f"driver steps must be 0 < short < long, got {short}, {long_}")
    ckpt_every = max(5000, long_)  # neither run checkpoints before its end
    out.mkdir(parents=True, exist_ok=True)

    timers: dict[str, Callable[[], float]] = {}
    skipped: dict[str, str] = {}
    jax_loops = [k for k in ("jax_scan", "jax_step", "gemm_only") if k in cfg.loops]
    if jax_loops:
        made = _jax_loops(cfg.hidden, cfg.batch_size, steps)
        timers.update({k: made[k] for k in jax_loops})
    torch_loops = tuple(k for k in ("torch_eager", "torch_graph") if k in cfg.loops)
    if torch_loops:
        for k, v in _torch_loops(cfg.hidden, cfg.batch_size, steps, torch_loops).items():
            if callable(v):
                timers[k] = v
            else:
                skipped[k] = v  # the reason it cannot run here
    for k, why in skipped.items():
        say(f"  {k}: skipped ({why})")
    for fn in timers.values():  # compile / warm up once, untimed
        fn()

    rates: dict[str, list[float]] = {k: [] for k in timers}
    ceilings: list[float] = []
    walls: dict[int, list[float]] = {short: [], long_: []}
    summaries: dict[int, list[dict]] = {short: [], long_: []}

    def report_now() -> dict[str, Any]:
        """The report of the rounds done so far (written after every round: a run stopped by a time box
        still leaves its figures)."""
        fps = flops_per_sample(cfg.hidden)
        ceil_rates = [c / fps for c in ceilings]
        per_round: dict[str, list[float]] = dict(rates)
        rows: dict[str, dict[str, Any]] = {}
        if "driver" in cfg.loops:
            extra = (long_ - short) * cfg.batch_size
            per_round["driver"] = [  # each round's own pair of runs: a difference of two noisy walls
                extra / (b - a) if b > a else math.nan
                for a, b in zip(walls[short], walls[long_], strict=True)
            ]
            rows["driver"] = {
                "summary_samples_per_s": _median([s["samples_per_s"] for s in summaries[long_]]),
                "walls_s": {str(short): walls[short], str(long_): walls[long_]},
                "compile_s": min(s["compile_s"] for s in summaries[long_]),
                "command": "jaxgen "
                + " ".join(driver_command(cfg.hidden, cfg.batch_size, long_, ckpt_every)),
            }

        def ratio(a: list[float], b: list[float] | None) -> float | None:
            return None if b is None else _median([x / y for x, y in zip(a, b, strict=True)])

        for k in ["driver", *rates]:
            if k not in per_round:
                continue
            v = per_round[k]
            finite = [x for x in v if math.isfinite(x)]
            rows[k] = {
                **rows.get(k, {}),
                "samples_per_s": _median(v),
                "best_samples_per_s": max(finite) if finite else math.nan,
                "rounds": v,
                "of_ceiling": ratio(v, ceil_rates),
                "best_of_ceiling": max(
                    [x / c for x, c in zip(v, ceil_rates, strict=True) if math.isfinite(x)], default=math.nan
                ),  # fmt: skip
                "vs_reference": ratio(v, per_round.get("jax_scan")),
                "vs_torch_eager": ratio(v, per_round.get("torch_eager")),
            }
        ceiling_flops = _median(ceilings)
        ceiling_rate = ceiling_flops / fps
        report = {
            **bench_report.header("peers", cfg.mode, out),
            "config": dataclasses.asdict(cfg),
            "work": f"MLP 784-{cfg.hidden}-{cfg.hidden}-10 ReLU, softmax cross-entropy, Adam, "
            f"batch {cfg.batch_size}",
            "steps_per_call": steps,
            "driver_steps": [short, long_],
            "flops_per_sample": fps,
            "executed_flops_per_sample": executed_flops_per_sample(cfg.hidden),
            "ceiling": {"flops_per_s": ceiling_flops, "samples_per_s": ceiling_rate, "rounds": ceilings},
            "loops": rows,
            "skipped": skipped,
            "rounds_done": len(ceilings),
        }
        report["wall_s"] = round(time.perf_counter() - t_start, 1)
        # strict JSON: a difference lost in noise (NaN) is written as null
        (out / "peers.json").write_text(sinks.dumps(report, indent=1) + "\n")
        (out / "peers.md").write_text(markdown(report))
        return report

    with tempfile.TemporaryDirectory(prefix="peers-", dir=out) as tmp:
        for r in range(cfg.rounds):
            ceilings.append(bench_throughput.gemm_ceiling((1024, 2048), reps=5)["flops_per_s"])
            for k, fn in timers.items():
                rates[k].append(fn())
            if "driver" in cfg.loops:
                for s in (short, long_):
                    args = driver_command(cfg.hidden, cfg.batch_size, s, ckpt_every)
                    wall, summary = _run_driver(args, Path(tmp) / f"r{r}-{s}")
                    walls[s].append(wall)
                    summaries[s].append(summary)
            line = ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items())
            if "driver" in cfg.loops:
                line += f", driver runs {walls[short][-1]:.1f} s / {walls[long_][-1]:.1f} s"
            say(f"  round {r + 1}/{cfg.rounds}: {line}")
            report_now()

    return report_now()


LABELS = {
    "driver": "`jaxgen train mlp` (the whole command)",
    "jax_scan": "reference: jitted `lax.scan` over an Adam step",
    "jax_step": "jitted step, Python loop",
    "torch_eager": "PyTorch eager",
    "torch_graph": "PyTorch, whole step in one CUDA graph",
    "gemm_only": "the step's 8 matrix products alone (no activation, loss or optimizer): "
    "the bound at these shapes",
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
        f"`jaxgen bench peers` ({report['mode']} mode) on **{report['device']}** "
        f"(backend `{report['backend']}`, "
        f"jax {report['env']['jax']}, matmul precision {report['env']['matmul_precision']}), "
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

    def x(v: float | None) -> str:
        return "–" if v is None or not math.isfinite(v) else f"{v:.2f}x"

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
    return "\n".join(lines) + "\n"
