"""GAN figures, drawn from saved run data (metrics.jsonl, samples/<step>.npy, the checkpoint's params).

gan_curves.png  the game: D and G losses against their values when D cannot tell (log 4 / log 2 for the
                2014 losses), mean D(x) and D(G(z)) against ½ (hinge, wgan-gp: the critic's mean scores)
progress.png    the fixed-noise samples saved at each checkpoint (an image strip, or scatters over the data);
                images [N, H, W, C] grey or colour, and an old run's flat [N, 784] snapshots as 28 x 28 grey
samples.png     final samples (image grid, or 2,500 points coloured by nearest mode)
dstar.png       1-D toys, the 2014 losses: the trained D against the optimal D* = p_data / (p_data + p_g)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from jaxgen import metrics
from jaxgen.plots.common import figure_rgb, image_grid, read_metrics, run_device, save, show_image
from jaxgen.runtime import eval_key

LOG4 = float(np.log(4.0))


def _snapshots(run_dir: Path) -> list[tuple[int, np.ndarray]]:
    files = sorted((run_dir / "samples").glob("*.npy"), key=lambda p: int(p.stem))
    return [(int(p.stem), np.load(p)) for p in files]


def _choose(items: list, k: int) -> list:
    """At most k items spread evenly, first and last included."""
    if len(items) <= k:
        return items
    idx = np.unique(np.linspace(0, len(items) - 1, k).round().astype(int))
    return [items[i] for i in idx]


def _title(task: Any, run_dir: Path, step: int) -> str:
    r = task.resolved
    return (
        f"{run_dir.name} · gan on {task.spec} · step {step} · {run_device(run_dir)}\n"
        f"pack {r['pack']}, r1 {r['r1']:g}, ema {r['ema']:g}, lr {task.cfg.lr:g}, d_lr {r['d_lr']:g},"
        f" d_steps {task.cfg.d_steps}, {task.cfg.loss}" + (f" (gp {task.gp:g})" if task.gp else "")
    )


def curves(task: Any, run_dir: Path, out_dir: Path) -> Path | None:
    """Losses with the equilibrium values and D's outputs with ½ (a critic's: its mean scores); mode coverage
    on toys."""
    s = read_metrics(run_dir)
    if "train/d_loss" not in s:
        return None
    toy = "test/modes_covered" in s
    fig, axes = plt.subplots(1, 3 if toy else 2, figsize=(14 if toy else 10, 3.6), layout="constrained")
    ax = axes[0]
    critic = not task.loss.probability
    d_eq, g_eq = task.loss.at_zero
    ax.plot(*s["train/d_loss"], color="C0", label="critic loss" if critic else "D loss (GAN value)")
    ax.plot(*s["train/g_loss"], color="C1", label=f"G loss ({task.cfg.loss})")
    d_label = "log 4" if np.isclose(d_eq, LOG4) else f"{d_eq:g}"
    ax.axhline(d_eq, color="C0", ls="--", lw=1, label=f"{d_label}: D loss when D cannot tell")
    ax.axhline(g_eq, color="C1", ls=":", lw=1, label=f"{g_eq:+.3f}: G loss when D cannot tell")
    ax.set_xlabel("generator step")
    ax.set_title("losses (train, chunk means)")
    ax.legend(fontsize=7)
    _outputs(axes[1], s, task.reading)
    if toy:
        ax = axes[2]
        steps, covered = s["test/modes_covered"]
        total = int(s["test/modes_total"][1][-1])
        ax.plot(steps, covered / total, "o-", color="C4", label=f"modes covered / {total}")
        ax.plot(*s["test/hq_fraction"], "s-", color="C5", label="high-quality fraction")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("generator step")
        ax.set_title("sample quality at checkpoints (2,500 samples)")
        ax.legend(fontsize=7)
    step = int(s["train/d_loss"][0][-1])
    fig.suptitle(_title(task, run_dir, step), fontsize=9)
    return save(fig, out_dir / "gan_curves.png")


def _outputs(ax, s: dict[str, Any], reading: str) -> None:
    """D's mean outputs on real and fake rows: probabilities against ½, or a critic's mean scores."""
    real, fake = ("D(x)", "D(G(z))") if reading == "d" else ("critic(x)", "critic(G(z))")
    ax.plot(*s[f"train/{reading}_real"], color="C2", label=f"mean {real}, train")
    ax.plot(*s[f"train/{reading}_fake"], color="C3", label=f"mean {fake}, train")
    if f"test/{reading}_real_mean" in s:
        ax.plot(*s[f"test/{reading}_real_mean"], "o", color="C2", ms=4, label=f"mean {real}, test")
        ax.plot(*s[f"test/{reading}_fake_mean"], "s", color="C3", ms=4, label=f"mean {fake}, 2,500 samples")
    if reading == "d":
        ax.axhline(0.5, color="k", ls="--", lw=1, label="½: D cannot tell")
        ax.set_ylim(0, 1)
    ax.set_xlabel("generator step")
    ax.set_title("discriminator outputs" if reading == "d" else "critic scores (no sigmoid: unbounded)")
    ax.legend(fontsize=7)


def _data_background(ax, task: Any, arrays: dict[str, Any] | None) -> None:
    """The true density: test points in grey (when `arrays` are given), a 3-std circle around each mode."""
    if arrays is not None:
        real = np.asarray(arrays["image"])
        # under the samples: the data is the reference the samples are judged against
        ax.scatter(real[:, 0], real[:, 1], s=0.5, color="0.55", alpha=0.3, zorder=1, label="data (test)")
    centers, std = np.asarray(task.info["centers"]), float(task.info["std"])
    for c in centers:
        ax.add_patch(plt.Circle(c, 3 * std, fill=False, color="k", lw=0.6, zorder=5))


def _points(ax, task: Any, x: np.ndarray, arrays: dict[str, Any] | None) -> None:
    """Samples x [N, D] of a toy over its data: histograms (1-D) or a scatter of the first two coordinates."""
    if x.shape[1] == 1:
        real = np.asarray(arrays["image"])[:, 0] if arrays is not None else x[:0, 0]
        both = np.concatenate([real, x[:, 0]])
        bins = np.linspace(both.min(), both.max(), 60)
        if len(real):
            ax.hist(real, bins, density=True, color="0.7", label="data")
        ax.hist(x[:, 0], bins, density=True, histtype="step", color="C3", label="G(z)")
    else:
        _data_background(ax, task, arrays)
        ax.scatter(x[:, 0], x[:, 1], s=2, color="C3", alpha=0.6, zorder=2, label="G(z)")
        ax.set_aspect("equal")


def points_rgb(task: Any, x: np.ndarray, arrays: dict[str, Any] | None = None) -> np.ndarray:
    """Toy samples over the test data (`_points`) as one small figure, uint8 RGB (plots.samples_rgb)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2) if x.shape[1] > 1 else (5, 3.2), dpi=100)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.08, top=0.92)  # constrained layout: +0.2 s
    _points(ax, task, np.asarray(x, np.float32), arrays)
    ax.legend(fontsize=7, loc="upper left", markerscale=3)
    ax.set_title(f"{len(x):,} samples on {task.spec}", fontsize=9)
    return figure_rgb(fig)


def progress(task: Any, run_dir: Path, out_dir: Path, arrays: dict[str, Any]) -> Path | None:
    """Fixed-noise samples from every saved snapshot (at most 8 for images, 6 for toys)."""
    snaps = _snapshots(run_dir)
    if not snaps:
        return None
    if task.kind == "image":
        snaps = _choose(snaps, 8)
        cols = 12
        fig, axes = plt.subplots(len(snaps), cols, figsize=(cols * 0.8, len(snaps) * 0.85), squeeze=False)
        for r, (step, x) in enumerate(snaps):
            for c in range(cols):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c < len(x):  # [N, H, W, C]; an old run's flat rows [N, 784] are drawn 28 x 28
                    show_image(ax, x[c], getattr(task, "shape", None))
            axes[r, 0].set_ylabel(f"{step}", fontsize=7, rotation=0, ha="right", va="center")
        fig.suptitle(
            _title(task, run_dir, snaps[-1][0]) + "\nsame z at every checkpoint (rows: step)",
            fontsize=8,
            y=1.0 + 0.45 / len(snaps),  # above the top row (bbox_inches="tight" keeps it in the file)
        )
        return save(fig, out_dir / "progress.png")
    snaps = _choose(snaps, 6)
    fig, axes = plt.subplots(
        1, len(snaps), figsize=(3.2 * len(snaps), 3.4), squeeze=False, layout="constrained"
    )
    for ax, (step, x) in zip(axes[0], snaps, strict=True):
        _points(ax, task, x, arrays)
        ax.set_title(f"step {step}", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(_title(task, run_dir, snaps[-1][0]) + " · same 1,000 z at every checkpoint", fontsize=9)
    return save(fig, out_dir / "progress.png")


def final_samples(
    task: Any, params: Any, run_dir: Path, out_dir: Path, arrays: dict[str, Any], step: int
) -> Path:
    """Images: 64 samples; toys: 2,500 samples coloured by nearest mode (grey = not high quality)."""
    key = eval_key(task.cfg.seed)
    if task.kind == "image":
        return image_grid(
            task.sample(params, key, 64), out_dir / "samples.png", shape=getattr(task, "shape", None)
        )
    x = task.sample(params, key, 2500)
    fig, ax = plt.subplots(figsize=(5.2, 5.2) if task.dim == 2 else (6, 3.6), layout="constrained")
    cov = metrics.mode_coverage(x, task.info["centers"], task.info["std"])
    if task.dim == 1:
        real = np.asarray(arrays["image"])[:, 0]
        bins = np.linspace(min(real.min(), x.min()), max(real.max(), x.max()), 80)
        ax.hist(real, bins, density=True, color="0.7", label="data (test)")
        ax.hist(x[:, 0], bins, density=True, histtype="step", color="C3", lw=1.5, label="G(z), 2,500")
        ax.legend(fontsize=8)
    else:
        centers = np.asarray(task.info["centers"])
        d = np.sqrt(((x[:, None, :] - centers[None]) ** 2).sum(-1))
        nearest, hq = d.argmin(1), d.min(1) <= 3 * task.info["std"]
        _data_background(ax, task, arrays)
        palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]  # no greys
        palette = palette[::2] + palette[1::2]  # the 9 strong colours first
        ax.scatter(x[~hq, 0], x[~hq, 1], s=3, color="0.2", alpha=0.5, zorder=2, label="not high quality")
        colours = [palette[i % len(palette)] for i in nearest[hq]]
        ax.scatter(x[hq, 0], x[hq, 1], s=3, c=colours, zorder=3, label="high quality (colour: nearest mode)")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="upper left", markerscale=3)
    ax.set_title(
        f"{run_dir.name} · step {step} · {run_device(run_dir)}\n"
        f"modes {cov['modes_covered']}/{cov['modes_total']}, hq_fraction {cov['hq_fraction']:.3f}",
        fontsize=9,
    )
    return save(fig, out_dir / "samples.png")


def dstar(task: Any, params: Any, run_dir: Path, out_dir: Path, step: int) -> Path:
    """1-D toys: D(x) and D*(x) over the data and model densities; mean D(G(z)) beside ½."""
    x = task.sample(params, eval_key(task.cfg.seed), 2500)
    r = task.dstar(params, x)
    d_fake = float(task.d_out(params, x).mean())
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.fill_between(r["x"], r["p_data"], color="0.8", label="p_data")
    ax.plot(r["x"], r["p_g"], color="C3", lw=1.2, label="p_g (Gaussian KDE of 2,500 G(z))")
    ax.set_ylabel("density")
    ax2 = ax.twinx()
    ax2.plot(r["x"], r["d"], color="C0", lw=2, label="trained D(x)")
    k = task.cfg.pack
    star = "p_data/(p_data+p_g)" if k == 1 else f"p_data^{k}/(p_data^{k}+p_g^{k}) at the packed row (x,..,x)"
    ax2.plot(r["x"], r["d_star"], color="k", ls="--", lw=1.2, label=f"optimal D* = {star}")
    ax2.axhline(0.5, color="C2", ls=":", lw=1.2, label="½")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("D")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax2.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper left")
    ax.set_xlabel("x")
    ax.set_title(
        f"{run_dir.name} · step {step} · {run_device(run_dir)}\nmean D(G(z)) = {d_fake:.3f};"
        f" mean |D - D*| weighted by (p_data+p_g)/2 = {r['distance']:.3f}",
        fontsize=9,
    )
    return save(fig, out_dir / "dstar.png")


def figures(
    task: Any, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
) -> list[Path]:
    """Every GAN figure for the run whose plots folder is out_dir (step: the checkpoint's, for titles)."""
    run_dir = out_dir.parent
    if step is None:
        s = read_metrics(run_dir)
        step = int(s["train/d_loss"][0][-1]) if "train/d_loss" in s else 0
    paths = [
        curves(task, run_dir, out_dir),
        progress(task, run_dir, out_dir, arrays),
        final_samples(task, params, run_dir, out_dir, arrays, step),
    ]
    if task.kind == "toy" and task.dim == 1 and task.loss.probability:  # D* is the 2014 game's optimal D
        paths.append(dstar(task, params, run_dir, out_dir, step))
    return [p for p in paths if p is not None]
