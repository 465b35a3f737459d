"""The DCGAN rows of `jaxgen bench peers`: one GAN training step (a D update, then a G update) on colour
images, jaxgen's driver chunk beside PyTorch eager with the same layers (issue 30's speed requirement).

The work (`Work`, default 64x64x3, batch 64): G = z (100) -> dense to a 4x4 grid of channels[-1] maps,
BatchNorm, ReLU -> 4x4 stride-2 transposed convolutions (BatchNorm, ReLU between) -> 3 maps -> sigmoid;
D = 4x4 stride-2 convolutions of d_channels with LeakyReLU 0.2 (no normalisation) -> dense to one logit.
Nonsaturating loss (binary cross-entropy on logits), Adam 2e-4, betas (0.5, 0.999) for both players, no
R1, EMA, packing, DiffAugment or decay. Per step: one D update on 64 real and 64 fresh fake images (G a
constant), then one G update on 64 fresh fakes. Radford et al.'s widths (G 128..1024, D 64..512) are
`RADFORD`; the default is a quarter (G) and half (D) as wide, so rounds fit a 2-core CPU.

- dcgan_chunk: the real GAN task (`jaxgen.tasks.build`) in the driver's chunk, made the way the driver
  makes it (chunks.place, batches.EpochShuffles, chunks.compile_chunk; conv_impl=auto), one host read of
  its metrics per call, as the driver's settle;
- dcgan_other_chunk: the same chunk with the convolution `auto` does not pick here (cpu: XLA's);
- dcgan_xla_step: the step with XLA's convolutions jitted alone and called from Python;
- dcgan_torch_eager: PyTorch eager doing the same step (same layers, NCHW, float32).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

JAX_LOOPS = ("dcgan_chunk", "dcgan_other_chunk", "dcgan_xla_step")
LOOPS = (*JAX_LOOPS, "dcgan_torch_eager")
COLOURS, KERNEL, STRIDE = 3, 4, 2
LR, BETAS = 2e-4, (0.5, 0.999)
Timer = Callable[[], float]  # one timed call: samples/s

LABELS = {
    "dcgan_chunk": "jaxgen's GAN step (`arch=conv`, conv_impl=auto) in the driver's compiled chunk",
    "dcgan_other_chunk": "the same chunk, the convolution auto does not pick here (cpu: xla; else: slices)",
    "dcgan_xla_step": "the same step with XLA's convolutions (conv_impl=xla), jitted alone, Python loop",
    "dcgan_torch_eager": "PyTorch eager, same layers",
}


@dataclasses.dataclass(frozen=True)
class Work:
    """The DCGAN step the rows time. Widths as GANConfig's: G's `channels` per stride-2 stage (the last
    is the first 4x4 grid's), D's `d_channels` in the order D applies them."""

    size: int = 64  # images size x size x 3
    batch_size: int = 64
    latent_dim: int = 100
    channels: tuple[int, ...] = (32, 64, 128, 256)  # Radford: 128, 256, 512, 1024
    d_channels: tuple[int, ...] = (32, 64, 128, 256)  # Radford: 64, 128, 256, 512
    images: int = 512  # the synthetic data set (smooth colour blobs, fixed seed)


RADFORD = Work(channels=(128, 256, 512, 1024), d_channels=(64, 128, 256, 512))


def blobs(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n smooth images uint8 [n, size, size, 3]: three Gaussian blobs of random colour each, fixed seed."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    out = np.zeros((n, size, size, COLOURS), np.float32)
    for _ in range(3):
        cy, cx = rng.random((2, n, 1, 1), dtype=np.float32)
        width = 0.05 + 0.2 * rng.random((n, 1, 1), dtype=np.float32)
        bump = np.exp(-((grid[None, :, None] - cy) ** 2 + (grid[None, None, :] - cx) ** 2) / (2 * width**2))
        out += bump[..., None] * rng.random((n, 1, 1, COLOURS), dtype=np.float32)
    return (255 * np.clip(out, 0, 1)).astype(np.uint8)


def dataset(work: Work) -> Any:
    """The synthetic images as a jaxgen Dataset (a colour source of one class)."""
    from jaxgen import data

    split = {"image": blobs(work.images, work.size), "label": np.zeros(work.images, np.int32)}
    return data.Dataset(spec="bench:dcgan-blobs", kind="image", train=split, test=split, num_classes=1,
                        info={"shape": (work.size, work.size, COLOURS)}, class_names=("blob",),
                        family="colour")  # fmt: skip


def gan_config(work: Work, conv_impl: str = "auto") -> Any:
    """The GAN config of the work: both players' Adam at 2e-4 and beta1 0.5, no stabilisers."""
    from jaxgen import tasks

    over = {"arch": "conv", "image_size": work.size, "channels": work.channels,
            "d_channels": work.d_channels, "latent_dim": work.latent_dim, "batch_size": work.batch_size,
            "steps": 1000, "lr": LR, "d_lr": LR, "beta1": BETAS[0], "decay": False, "r1": 0.0, "ema": 0.0,
            "pack": 1, "d_steps": 1, "diffaug": "none", "loss": "nonsaturating", "norm": "batch",
            "activation": "leaky_relu:0.2", "conv_impl": conv_impl}  # fmt: skip
    return tasks.make_config("gan", over)


# ---------------------------------------------------------------- the FLOP count


def forward_macs(work: Work) -> dict[str, int]:
    """Multiply-adds of one sample's forward pass: G's (`g`, its dense projection `g_project` included)
    and D's (`d`, its first convolution `d_first` included). A k x k stride-s convolution costs
    out_pixels * k^2 * c_in * c_out; a stride-s transposed one in_pixels * k^2 * c_in * c_out (k^2 / s^2
    = 4 taps per output pixel: the multiplications by inserted zeros not counted); 'SAME' borders count."""
    widths = tuple(reversed(work.channels))
    side = work.size >> len(work.channels)
    g_project = work.latent_dim * side * side * widths[0]
    g = g_project
    for cin, cout in zip(widths, (*widths[1:], COLOURS), strict=True):
        g += side * side * KERNEL**2 * cin * cout
        side *= STRIDE
    side, cin, d_layers = work.size, COLOURS, []
    for c in work.d_channels:
        side //= STRIDE
        d_layers.append(side * side * KERNEL**2 * cin * c)
        cin = c
    d = sum(d_layers) + side * side * cin  # the dense layer to one logit
    return {"g": g, "g_project": g_project, "d": d, "d_first": d_layers[0]}


def flops_per_step(work: Work) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one G+D step, counted as both loops execute it, with
    G, Gp, D, D1 the per-sample forward multiply-adds of G, G's dense projection, D and D's first
    convolution (forward_macs) and B the batch:

        D update: G forward on B fakes (G)  +  D forward on B real and B fake (2 D)  +  D's weight
                  gradients on both (2 D)  +  its input gradients below the last layer, none for the
                  pixels (2 (D - D1))                                             = G + 6 D - 2 D1
        G update: G forward (G)  +  D forward on the fakes (D)  +  D's input gradients down to the pixels
                  (D; no weight gradients of D)  +  G's weight gradients (G)  +  G's input gradients
                  (G - Gp: none for z)                                            = 3 G - Gp + 2 D

        FLOPs per step = 2 B (4 G - Gp + 8 D - 2 D1)

    BatchNorm, activations, losses and Adam are not counted (not matrix products)."""
    m = forward_macs(work)
    return 2 * work.batch_size * (4 * m["g"] - m["g_project"] + 8 * m["d"] - 2 * m["d_first"])


def flops_per_sample(work: Work) -> float:
    """flops_per_step over the batch: what the ceiling's samples/s divides by."""
    return flops_per_step(work) / work.batch_size


# ---------------------------------------------------------------- jaxgen's loops


def _chunk_timer(task: Any, work: Work, n: int) -> Timer:
    """The task's step in the driver's compiled chunk of n steps (samples/s per call)."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxgen import chunks, runtime
    from jaxgen.data import batches

    mesh, per_step = runtime.make_mesh(), task.examples_per_step
    state, train_dev, data_key, loop_key = chunks.place(task, 0, dataset(work).train, mesh)
    shuffler = batches.EpochShuffles(train_dev, data_key, per_step, NamedSharding(mesh, P()))
    fn = chunks.compile_chunk(task, per_step, n, mesh, state, train_dev, data_key, loop_key,
                             shuffler.for_chunk(0, n))  # fmt: skip
    box = {"state": state, "step": 0}

    def timer() -> float:
        t0 = time.perf_counter()
        shuffles = shuffler.for_chunk(box["step"], n)
        box["state"], metrics, finite = fn(box["state"], train_dev, data_key, loop_key, shuffles)
        jax.device_get((metrics, finite))  # the driver's one host read per chunk
        box["step"] += n
        return n * per_step / (time.perf_counter() - t0)

    return timer


def _step_timer(task: Any, work: Work, steps: int) -> Timer:
    """The task's step jitted alone, dispatched from a Python loop over batches already on the device."""
    import jax.numpy as jnp

    b = work.batch_size
    images = jnp.asarray(dataset(work).train["image"])
    starts = [(i * b) % (work.images - b + 1) for i in range(steps)]
    keys = jax.random.split(jax.random.key(1), steps)
    one = jax.jit(task.step, donate_argnums=0)
    box = {"s": jax.jit(task.init)(jax.random.key(0))}

    def timer() -> float:
        t0 = time.perf_counter()
        s = box["s"]
        for i, start in enumerate(starts):
            s, m = one(s, {"image": images[start : start + b], "label": jnp.zeros(b, jnp.int32)}, keys[i])
        m["g_loss"].block_until_ready()
        box["s"] = s
        return steps * b / (time.perf_counter() - t0)

    return timer


def jax_timers(work: Work, steps: int, which: tuple[str, ...]) -> dict[str, Timer]:
    """The jaxgen loops of `which`, each timing `steps` steps a call (the other chunk on the CPU: a fifth,
    at least one: XLA's convolution in a scan is the slow case `auto` avoids)."""
    from jaxgen import convs, tasks

    ds, out = dataset(work), {}
    other = "xla" if convs.resolve_impl("auto") == "slices" else "slices"
    few = max(1, steps // 5) if jax.default_backend() == "cpu" and other == "xla" else steps
    plan = {"dcgan_chunk": ("auto", steps), "dcgan_other_chunk": (other, few),
            "dcgan_xla_step": ("xla", steps)}  # fmt: skip
    for name in (k for k in JAX_LOOPS if k in which):
        impl, n = plan[name]
        task = tasks.build(gan_config(work, impl), ds)
        out[name] = _step_timer(task, work, n) if name.endswith("_step") else _chunk_timer(task, work, n)
    return out


# ---------------------------------------------------------------- PyTorch eager


def torch_nets(torch: Any, work: Work) -> tuple[Any, Any]:
    """(G, D) in PyTorch with jaxgen's layers: G's dense projection without bias before BatchNorm, its
    transposed convolutions 4x4 stride 2 padding 1 (exactly 2x, as 'SAME'), the last with bias; D's
    convolutions 4x4 stride 2 padding 1 with bias, LeakyReLU 0.2, a dense logit."""
    nn = torch.nn
    widths, side = tuple(reversed(work.channels)), work.size >> len(work.channels)
    g = [nn.Linear(work.latent_dim, side * side * widths[0], bias=False),
         nn.Unflatten(1, (widths[0], side, side)), nn.BatchNorm2d(widths[0]), nn.ReLU()]  # fmt: skip
    for i, (cin, cout) in enumerate(zip(widths, (*widths[1:], COLOURS), strict=True)):
        last = i == len(widths) - 1
        g.append(nn.ConvTranspose2d(cin, cout, KERNEL, STRIDE, 1, bias=last))
        g += [] if last else [nn.BatchNorm2d(cout), nn.ReLU()]
    d, cin, side = [], COLOURS, work.size
    for c in work.d_channels:
        d += [nn.Conv2d(cin, c, KERNEL, STRIDE, 1), nn.LeakyReLU(0.2)]
        cin, side = c, side // STRIDE
    d += [nn.Flatten(), nn.Linear(side * side * cin, 1)]
    return nn.Sequential(*g, nn.Sigmoid()), nn.Sequential(*d)


def torch_eager(work: Work, steps: int) -> Timer | str:
    """PyTorch eager doing the same step (timer of `steps` steps a call, samples/s), or why not. On the
    CPU its threads are set to the cores this process may use (as XLA's)."""
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - any import failure means "not installed here"
        return f"torch not importable ({type(err).__name__}): pip install 'jaxgen[peers]' to compare"
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(cores or 1)
    torch.manual_seed(0)
    g, d = (m.to(dev) for m in torch_nets(torch, work))
    opt_g = torch.optim.Adam(g.parameters(), LR, betas=BETAS)
    opt_d = torch.optim.Adam(d.parameters(), LR, betas=BETAS)
    bce, b = torch.nn.BCEWithLogitsLoss(), work.batch_size
    images = torch.from_numpy(blobs(work.images, work.size)).to(dev).permute(0, 3, 1, 2).contiguous()
    ones, zeros = torch.ones(b, 1, device=dev), torch.zeros(b, 1, device=dev)

    def one(i: int):
        start = (i * b) % (work.images - b + 1)
        real = images[start : start + b].float().div_(255)
        with torch.no_grad():  # D's update: G a constant (fresh noise, as jaxgen's D phase)
            fake = g(torch.randn(b, work.latent_dim, device=dev))
        opt_d.zero_grad(set_to_none=True)
        d_loss = bce(d(real), ones) + bce(d(fake), zeros)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)  # G's update: no weight gradients for D (jax.grad takes none)
        opt_g.zero_grad(set_to_none=True)
        g_loss = bce(d(g(torch.randn(b, work.latent_dim, device=dev))), ones)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
        return g_loss

    for i in range(2):
        one(i)

    def timer() -> float:
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps):
            loss = one(i)
        float(loss.detach())
        return steps * b / (time.perf_counter() - t0)

    return timer


def timers(work: Work, steps: int, which: tuple[str, ...]) -> dict[str, Timer | str]:
    """The loops of `which` as timers (not yet called), `steps` steps a call (x10 on accelerators), or the
    reason one cannot run here."""
    steps *= 1 if jax.default_backend() == "cpu" else 10
    made: dict[str, Timer | str] = dict(jax_timers(work, steps, which))
    if "dcgan_torch_eager" in which:
        made["dcgan_torch_eager"] = torch_eager(work, steps)
    return made


# ---------------------------------------------------------------- its report section


def describe(work: Work) -> str:
    """The work in one line, for the report."""
    g = " -> ".join(f"deconv 4x4/2 {c}" for c in (*reversed(work.channels[:-1]), COLOURS))
    d = " -> ".join(f"conv 4x4/2 {c}" for c in work.d_channels)
    first = work.size >> len(work.channels)
    return (
        f"DCGAN {work.size}x{work.size}x{COLOURS}, batch {work.batch_size}: G z {work.latent_dim} -> dense "
        f"{first}x{first}x{work.channels[-1]}, BatchNorm, ReLU -> {g} (BatchNorm, ReLU between) -> sigmoid; "
        f"D {d} (LeakyReLU 0.2) -> dense 1; nonsaturating BCE, Adam {LR:g} betas {BETAS}; per step one D "
        f"update ({work.batch_size} real + {work.batch_size} fake) and one G update"
    )


def section(work: Work, ceiling_samples_per_s: float, loops: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report's `dcgan` section: the rows (samples/s, G+D steps/s, share of the ceiling, ratio to
    PyTorch eager) and the work and FLOPs behind them."""
    for row in loops.values():
        row["steps_per_s"] = row["samples_per_s"] / work.batch_size
    return {
        "work": describe(work),
        "flops_per_step": flops_per_step(work),
        "flops_per_sample": flops_per_sample(work),
        "ceiling_samples_per_s": ceiling_samples_per_s,
        "loops": loops,
    }


def markdown(report: dict[str, Any], times: Callable[[float | None], str]) -> list[str]:
    """The DCGAN step's table (a section of peers.md)."""
    sec = report["dcgan"]
    lines = [
        "",
        "### The DCGAN step",
        "",
        f"Work: {sec['work']}. Ceiling: the same GEMM rate over the {sec['flops_per_step'] / 1e9:.2f} G "
        "matrix-product FLOPs a step executes (jaxgen.bench.peer_dcgan.flops_per_step) = "
        f"{sec['ceiling_samples_per_s']:,.0f} samples/s.",
        "",
        "| loop | samples/s, median round (best) | G+D steps/s | ms per step | of ceiling (best round) "
        "| vs PyTorch eager |",
        "|---|---|---|---|---|---|",
    ]
    for k, row in sec["loops"].items():
        steps = row["steps_per_s"]
        ms = 1e3 / steps if steps and math.isfinite(steps) else math.nan
        rate = f"{_rate(row['samples_per_s'])} ({_rate(row['best_samples_per_s'])})"
        of = f"{row['of_ceiling']:.3f} ({row['best_of_ceiling']:.3f})"
        vs = times(row["vs_torch_eager"])
        lines.append(f"| {LABELS.get(k, k)} | {rate} | {steps:.2f} | {ms:.0f} | {of} | {vs} |")
    for k, why in report["skipped"].items():
        if k.startswith("dcgan_"):
            lines.append(f"| {LABELS.get(k, k)} | skipped: {why} | | | | |")
    return lines


def _rate(v: float) -> str:
    """samples/s as the table shows them: a decimal below 100 (a 64x64 step on a CPU is ~1 s)."""
    return f"{v:,.0f}" if not math.isfinite(v) or v >= 100 else f"{v:.1f}"
