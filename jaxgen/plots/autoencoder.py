"""Autoencoder figures, drawn from a checkpoint alone: reconstructions beside PCA, the latent space by digit,
decoded digit means, walks between digits, the decoded latent plane over the codes' density, samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen import metrics
from jaxgen.plots.common import plt, save
from jaxgen.runtime import eval_key

DIGIT_COLORS = plt.get_cmap("tab10").colors  # categorical: one colour per digit


def mosaic(images_NxD: np.ndarray, rows: int, cols: int, side: int = 28, gap: int = 2) -> np.ndarray:
    """Images tiled into one array (rows x cols cells, `gap` pixels of background between cells)."""
    out = np.zeros((rows * (side + gap) - gap, cols * (side + gap) - gap), np.float32)
    for i, img in enumerate(np.asarray(images_NxD)[: rows * cols]):
        r, c = divmod(i, cols)
        out[r * (side + gap) : r * (side + gap) + side, c * (side + gap) : c * (side + gap) + side] = (
            img.reshape(side, side)
        )
    return out


def _title(task, at: str, what: str) -> str:
    """`at`: "step N, DEVICE" of the run (figures makes it once)."""
    c = task.cfg
    kind = "VAE" if c.variational else ("denoising AE" if c.noise > 0 else "AE")
    kind = f"{c.arch_spec.label} {kind}".strip()  # "conv AE": the walkthrough sets the two side by side
    return f"{what}\n{kind}, latent {c.latent_dim} ({at})"


def _names(task) -> tuple[str, ...]:
    """The class names of the task's data ("0".."9" for digits, "T-shirt/top", ... for clothes)."""
    return tuple(getattr(task, "class_names", ())) or tuple(str(d) for d in range(10))


def _pick(labels: np.ndarray, per_digit: int = 1) -> np.ndarray:
    """Indices of the first `per_digit` examples of each digit, digit-major."""
    return np.array([i for d in range(10) for i in np.flatnonzero(labels == d)[:per_digit]])


def reconstructions(task, params, x, y, out: Path, at: str) -> Path:
    """Originals above the autoencoder's and PCA's reconstructions (two of each digit)."""
    idx = _pick(y, 2)
    pca = task.pca()
    rows = [
        ("original", x[idx]),
        (f"autoencoder\nBCE {metrics.bce(task.decode(params, task.encode(params, x)), x):.4f}", None),
        (f"PCA-{task.cfg.latent_dim}", np.clip(pca.decode(pca.encode(x[idx])), 0, 1)),
    ]
    rows[1] = (rows[1][0], task.decode(params, task.encode(params, x[idx])))
    pca_bce = metrics.bce(np.clip(pca.decode(pca.encode(x)), 0, 1), x)
    rows[2] = (f"PCA-{task.cfg.latent_dim}\nBCE {pca_bce:.4f}", rows[2][1])
    fig, axes = plt.subplots(3, 1, figsize=(12, 2.9), layout="constrained")
    for ax, (label, imgs) in zip(axes, rows, strict=True):
        ax.imshow(mosaic(imgs, 1, len(idx)), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(
        _title(task, at, "test images (top), reconstructions; BCE over the whole test split"), fontsize=10
    )
    return save(fig, out / "reconstructions.png")


def _codes_2d(task, codes: np.ndarray) -> tuple[np.ndarray, str]:
    if codes.shape[1] == 2:
        return codes, ("z1", "z2")
    proj = metrics.pca_fit(codes, 2)
    return proj.encode(codes), ("principal component 1 of the codes", "principal component 2 of the codes")


def latent_scatter(task, params, x, y, out: Path, at: str) -> Path:
    """Test codes coloured by digit (2-D codes directly, larger ones by their top two principal axes)."""
    codes = task.encode(params, x)
    xy, (lx, ly) = _codes_2d(task, codes)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    for d in range(10):
        m = y == d
        ax.scatter(
            xy[m, 0], xy[m, 1], s=6, color=DIGIT_COLORS[d], alpha=0.7, label=_names(task)[d], linewidths=0
        )
        cx, cy = np.median(xy[m], axis=0)
        ax.text(
            cx,
            cy,
            _names(task)[d],
            fontsize=13 if len(_names(task)[d]) < 3 else 8,
            weight="bold",
            ha="center",
            va="center",
            color="black",
            bbox={"boxstyle": "circle,pad=0.2", "fc": DIGIT_COLORS[d], "alpha": 0.8, "lw": 0},
        )
    ax.legend(title="class", markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_xlabel(lx)
    ax.set_ylabel(ly)
    knn = metrics.knn_accuracy(task.encode(params, task.train_images()[0]), task.train_images()[1], codes, y)
    ax.set_title(
        _title(task, at, f"latent codes of {len(x)} test images (5-NN class accuracy {knn:.3f})"),
        fontsize=10,
    )
    return save(fig, out / "latent_space.png")


def digit_means(task, params, x, y, out: Path, at: str) -> Path:
    """Each digit's mean code decoded: what the code space holds at the centre of each class."""
    codes = task.encode(params, x)
    means = np.stack([codes[y == d].mean(0) for d in range(10)])
    imgs = task.decode(params, means.astype(np.float32))
    fig, axes = plt.subplots(1, 10, figsize=(10, 1.9), layout="constrained")
    for d, ax in enumerate(axes):
        ax.imshow(imgs[d].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(
            _names(task)[d],
            color=DIGIT_COLORS[d],
            fontsize=9 if len(_names(task)[d]) > 2 else 12,
            weight="bold",
        )
        ax.axis("off")
    fig.suptitle(_title(task, at, "mean code of each class's test images, decoded"), fontsize=10)
    return save(fig, out / "digit_means.png")


WALKS = ((1, 7), (3, 8), (4, 9), (0, 6), (2, 5))


def interpolation(task, params, x, y, out: Path, at: str, n_steps: int = 10) -> Path:
    """Straight lines in code space between two test images, decoded step by step (ends: the originals)."""
    rows = []
    for a, b in WALKS:
        ia, ib = np.flatnonzero(y == a)[0], np.flatnonzero(y == b)[0]
        za, zb = task.encode(params, x[[ia, ib]])
        t = np.linspace(0, 1, n_steps)[:, None]
        walk = task.decode(params, ((1 - t) * za + t * zb).astype(np.float32))
        rows.append(np.concatenate([x[ia : ia + 1], walk, x[ib : ib + 1]]))
    grid = mosaic(np.concatenate(rows), len(WALKS), n_steps + 2)
    fig, ax = plt.subplots(figsize=(9, 0.85 * len(WALKS) + 0.9), layout="constrained")
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([14, 30 * (n_steps + 1) + 14], ["original A", "original B"], fontsize=8)
    ax.set_yticks([30 * i + 14 for i in range(len(WALKS))], [f"{a} → {b}" for a, b in WALKS])
    ax.set_title(
        _title(task, at, f"walks between two test images: {n_steps} decoded points on the line z_A → z_B"),
        fontsize=10,
    )
    return save(fig, out / "interpolation.png")


def latent_grid(task, params, x, y, out: Path, at: str, n: int = 20) -> Path:
    """latent_dim = 2: the decoder over a grid of the plane, drawn over the density of the test codes."""
    codes = task.encode(params, x)
    lo, hi = np.percentile(codes, 1, axis=0), np.percentile(codes, 99, axis=0)
    g1, g2 = np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n)  # top row = largest z2
    zz = np.array([(a, b) for b in g2 for a in g1], np.float32)
    tile = mosaic(task.decode(params, zz), n, n, gap=0)
    from scipy.ndimage import zoom
    from scipy.stats import gaussian_kde

    # The density on a grid 4x coarser than the tile's pixels, then bilinear up to them: the same smooth
    # picture for 1/16 of the kernel sums (at every pixel it took 7 s for 5,000 codes).
    kde = gaussian_kde(codes.T)
    coarse = (max(2, tile.shape[0] // 4), max(2, tile.shape[1] // 4))
    px = np.linspace(lo[0], hi[0], coarse[1])
    py = np.linspace(hi[1], lo[1], coarse[0])
    dens = kde(np.stack(np.meshgrid(px, py)).reshape(2, -1)).reshape(coarse)
    dens = np.clip(zoom(dens, (tile.shape[0] / coarse[0], tile.shape[1] / coarse[1]), order=1), 0, None)
    dens = dens[: tile.shape[0], : tile.shape[1]]
    rgba = plt.get_cmap("YlGnBu")(0.85 * dens / dens.max())
    rgba[..., :3] *= (1 - tile)[..., None]  # ink drawn dark over the density colour
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2), layout="constrained")
    extent = (lo[0], hi[0], lo[1], hi[1])
    axes[0].imshow(rgba, extent=extent, aspect="auto")
    axes[0].set_title("decoded grid over the plane; colour: density of test codes", fontsize=9)
    for d in range(10):
        m = y == d
        axes[1].scatter(
            codes[m, 0], codes[m, 1], s=5, color=DIGIT_COLORS[d], label=_names(task)[d], linewidths=0
        )
    axes[1].set_xlim(lo[0], hi[0])
    axes[1].set_ylim(lo[1], hi[1])
    axes[1].legend(title="class", markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    axes[1].set_title("the same window: test codes by digit", fontsize=9)
    for ax in axes:
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    fig.suptitle(_title(task, at, "the 2-D latent plane"), fontsize=10)
    return save(fig, out / "latent_grid.png")


def samples(task, params, out: Path, at: str, key) -> Path:
    """64 new digits: a VAE's prior draws decoded, or draws from the mixture fitted to a plain AE's codes."""
    imgs = task.sample(params, key, 64)
    how = (
        "z ~ N(0, I) decoded"
        if task.cfg.variational
        else (f"z from a {task.cfg.mixture}-component Gaussian mixture fitted to the training codes, decoded")
    )
    fig, ax = plt.subplots(figsize=(6.5, 7), layout="constrained")
    ax.imshow(mosaic(imgs, 8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.axis("off")
    ax.set_title(_title(task, at, f"samples: {how}"), fontsize=9)
    return save(fig, out / "samples.png")


def figures(
    task, params: Any, arrays: dict[str, Any], out: Path, step: int | None, device: str = "?"
) -> list[Path]:
    """Every autoencoder figure for the test split `arrays`, into `out` (titles name the run's device)."""
    at = f"step {step}, {device}" if step is not None else device
    x = np.asarray(arrays["image"], np.float32) / 255.0
    y = np.asarray(arrays["label"])
    files = [
        reconstructions(task, params, x, y, out, at),
        latent_scatter(task, params, x, y, out, at),
        digit_means(task, params, x, y, out, at),
        interpolation(task, params, x, y, out, at),
        samples(task, params, out, at, eval_key(task.cfg.seed)),
    ]
    if task.cfg.latent_dim == 2:
        files.append(latent_grid(task, params, x, y, out, at))
    return files
