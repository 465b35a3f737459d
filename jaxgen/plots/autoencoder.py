"""Autoencoder figures, drawn from a checkpoint alone: reconstructions beside PCA, the latent space by digit,
decoded class means, walks between classes, the decoded latent plane over the codes' density, samples.
Images are [N, H, W, C], grey (C = 1) or colour (C = 3), of any size (jaxgen.plots.common.show_image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen import metrics
from jaxgen.plots.common import class_label, mosaic, plt, save, show_image, strips_rgb
from jaxgen.runtime import eval_key

DIGIT_COLORS = plt.get_cmap("tab10").colors  # categorical: one colour per digit (per class, up to 10)
MANY_COLORS = plt.get_cmap("tab20").colors  # more than 10 classes


def _colour(d: int, k: int) -> tuple:
    """Class d's colour among k classes."""
    return DIGIT_COLORS[d % 10] if k <= 10 else MANY_COLORS[d % 20]


def _shape(task, x: np.ndarray) -> tuple[int, ...] | None:
    """(H, W, C) of the images: x's own when it is [N, H, W, C], else the task's (flat rows)."""
    x = np.asarray(x)
    return tuple(x.shape[1:]) if x.ndim == 4 else getattr(task, "shape", None)


def _like(images: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Images (a decoder's, PCA's flat rows) in the layout of x's, so that metrics compare pixel by pixel."""
    images = np.asarray(images)
    return images.reshape(len(images), *np.shape(x)[1:])


def _flat(x: np.ndarray) -> np.ndarray:
    """Images as the rows [N, H*W*C] that PCA works on."""
    return np.asarray(x).reshape(len(x), -1)


def _title(task, at: str, what: str) -> str:
    """`at`: "step N, DEVICE" of the run (figures makes it once)."""
    c = task.cfg
    kind = "VAE" if c.variational else ("denoising AE" if c.noise > 0 else "AE")
    kind = f"{c.arch_spec.label} {kind}".strip()  # "conv AE": the walkthrough sets the two side by side
    return f"{what}\n{kind}, latent {c.latent_dim} ({at})"


def _names(task) -> tuple[str, ...]:
    """The class names of the task's data ("0".."9" for digits, "T-shirt/top", ... for clothes,
    "smileys_emotion", ... for emoji)."""
    return tuple(getattr(task, "class_names", ()) or ()) or tuple(str(d) for d in range(10))


def _classes(task, y: np.ndarray) -> list[int]:
    """The classes the labels y hold, in order."""
    return [int(d) for d in np.unique(np.asarray(y))]


def _label(task, d: int) -> str:
    """Class d's name, cut to 14 characters for legends, ticks and titles (its number where unnamed)."""
    return class_label(_names(task), d)


def _count(task, y: np.ndarray) -> int:
    """How many classes there are (for the palette: tab10 up to 10, tab20 beyond)."""
    return max(len(_names(task)), int(np.max(y, initial=-1)) + 1)


def _pick(labels: np.ndarray, per_digit: int = 1, classes=range(10)) -> np.ndarray:
    """Indices of the first `per_digit` examples of each class, class-major."""
    return np.array([i for d in classes for i in np.flatnonzero(labels == d)[:per_digit]], np.int64)


def reconstructions(task, params, x, y, out: Path, at: str) -> Path:
    """Originals above the autoencoder's and PCA's reconstructions (two of each class). PCA works on flat
    rows: its reconstructions are drawn in the images' shape."""
    idx = _pick(y, 2, _classes(task, y))[:24]  # two of each class (of the first 12 with many)
    pca = task.pca()
    ae_bce = metrics.bce(_like(task.decode(params, task.encode(params, x)), x), x)
    pca_bce = metrics.bce(_like(np.clip(pca.decode(pca.encode(_flat(x))), 0, 1), x), x)
    rows = [
        ("original", x[idx]),
        (f"autoencoder\nBCE {ae_bce:.4f}", _like(task.decode(params, task.encode(params, x[idx])), x[idx])),
        (
            f"PCA-{task.cfg.latent_dim}\nBCE {pca_bce:.4f}",
            _like(np.clip(pca.decode(pca.encode(_flat(x[idx]))), 0, 1), x[idx]),
        ),
    ]
    shape = _shape(task, x)
    fig, axes = plt.subplots(3, 1, figsize=(12, 2.9), layout="constrained")
    for ax, (label, imgs) in zip(axes, rows, strict=True):
        show_image(ax, mosaic(imgs, 1, len(idx), shape=shape))
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
    """Test codes coloured by class (2-D codes directly, larger ones by their top two principal axes); each
    class named at its median (long names cut to 14 characters), the legend outside the axes."""
    codes = task.encode(params, x)
    xy, (lx, ly) = _codes_2d(task, codes)
    classes = _classes(task, y)
    k = _count(task, y)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    for d in classes:
        m = y == d
        name = _label(task, d)
        ax.scatter(xy[m, 0], xy[m, 1], s=6, color=_colour(d, k), alpha=0.7, label=name, linewidths=0)
        cx, cy = np.median(xy[m], axis=0)
        short = len(name) < 3
        ax.text(
            cx,
            cy,
            name,
            fontsize=13 if short else 8 if len(name) <= 8 else 7,
            weight="bold",
            ha="center",
            va="center",
            color="black",
            bbox={
                "boxstyle": "circle,pad=0.2" if short else "round,pad=0.2",
                "fc": _colour(d, k),
                "alpha": 0.8,
                "lw": 0,
            },
        )
    ax.legend(title="class", markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_xlabel(lx)
    ax.set_ylabel(ly)
    train_x, train_y = task.train_images()
    knn = metrics.knn_accuracy(task.encode(params, train_x), train_y, codes, y)
    ax.set_title(
        _title(task, at, f"latent codes of {len(x)} test images (5-NN class accuracy {knn:.3f})"),
        fontsize=10,
    )
    return save(fig, out / "latent_space.png")


def digit_means(task, params, x, y, out: Path, at: str) -> Path:
    """Each class's mean code decoded: what the code space holds at the centre of each class."""
    codes = task.encode(params, x)
    classes = _classes(task, y)
    k = _count(task, y)
    means = np.stack([codes[y == d].mean(0) for d in classes])
    imgs = task.decode(params, means.astype(np.float32))
    fig, axes = plt.subplots(
        1, len(classes), figsize=(max(len(classes), 3), 1.9), layout="constrained", squeeze=False
    )
    for i, (d, ax) in enumerate(zip(classes, axes[0], strict=True)):
        show_image(ax, imgs[i], _shape(task, x))
        name = _label(task, d)
        ax.set_title(
            name,
            color=_colour(d, k),
            fontsize=12 if len(name) <= 2 else 9 if len(name) <= 8 else 7,
            weight="bold",
        )
        ax.axis("off")
    fig.suptitle(_title(task, at, "mean code of each class's test images, decoded"), fontsize=10)
    return save(fig, out / "digit_means.png")


WALKS = ((1, 7), (3, 8), (4, 9), (0, 6), (2, 5))  # ten classes (digits): the pairs that look alike


def _walks(classes: list[int]) -> list[tuple[int, int]]:
    """The class pairs to walk between: WALKS when all ten classes 0..9 are there, else up to five pairs of
    classes half the list apart (one class: two of its images)."""
    if set(classes) == set(range(10)):
        return list(WALKS)
    k = len(classes)
    pairs = [(classes[i], classes[(i + max(1, k // 2)) % k]) for i in range(min(5, k))]
    return list(dict.fromkeys(pairs))


def interpolation(task, params, x, y, out: Path, at: str, n_steps: int = 10) -> Path:
    """Straight lines in code space between two test images, decoded step by step (ends: the originals)."""
    walks = _walks(_classes(task, y))
    rows = []
    for a, b in walks:
        ia = np.flatnonzero(y == a)[0]
        ib = next((i for i in np.flatnonzero(y == b) if i != ia), ia)
        za, zb = task.encode(params, x[[ia, ib]])
        t = np.linspace(0, 1, n_steps)[:, None]
        walk = _like(task.decode(params, ((1 - t) * za + t * zb).astype(np.float32)), x)
        rows.append(np.concatenate([x[ia : ia + 1], walk, x[ib : ib + 1]]))
    gap = 2
    grid = mosaic(np.concatenate(rows), len(walks), n_steps + 2, gap=gap, shape=_shape(task, x))
    h = (grid.shape[0] + gap) // len(walks)  # a cell and its gap, in pixels
    w = (grid.shape[1] + gap) // (n_steps + 2)
    fig, ax = plt.subplots(figsize=(9, 0.85 * len(walks) + 0.9), layout="constrained")
    show_image(ax, grid)
    ax.set_xticks([w // 2 - 1, w * (n_steps + 1) + w // 2 - 1], ["original A", "original B"], fontsize=8)
    long = max(len(_label(task, d)) for pair in walks for d in pair) > 2
    ax.set_yticks(
        [h * i + h // 2 - 1 for i in range(len(walks))],
        [f"{_label(task, a)} → {_label(task, b)}" for a, b in walks],
        fontsize=8 if long else None,
    )
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
    tile = mosaic(task.decode(params, zz), n, n, gap=0, shape=_shape(task, x))  # [n*H, n*W, C]
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
    if tile.shape[-1] == 1:
        rgba[..., :3] *= 1 - tile  # ink drawn dark over the density colour
    else:
        rgba[..., :3] = 0.75 * tile + 0.25 * rgba[..., :3]  # colour images, tinted by the density
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2), layout="constrained")
    extent = (lo[0], hi[0], lo[1], hi[1])
    axes[0].imshow(rgba, extent=extent, aspect="auto")
    axes[0].set_title("decoded grid over the plane; colour: density of test codes", fontsize=9)
    k = _count(task, y)
    for d in _classes(task, y):
        m = y == d
        axes[1].scatter(
            codes[m, 0], codes[m, 1], s=5, color=_colour(d, k), label=_label(task, d), linewidths=0
        )
    axes[1].set_xlim(lo[0], hi[0])
    axes[1].set_ylim(lo[1], hi[1])
    axes[1].legend(title="class", markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    axes[1].set_title("the same window: test codes by class", fontsize=9)
    for ax in axes:
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    fig.suptitle(_title(task, at, "the 2-D latent plane"), fontsize=10)
    return save(fig, out / "latent_grid.png")


def samples(task, params, out: Path, at: str, key) -> Path:
    """64 new images: a VAE's prior draws decoded, or draws from the mixture fitted to a plain AE's codes."""
    imgs = task.sample(params, key, 64)
    how = (
        "z ~ N(0, I) decoded"
        if task.cfg.variational
        else (f"z from a {task.cfg.mixture}-component Gaussian mixture fitted to the training codes, decoded")
    )
    fig, ax = plt.subplots(figsize=(6.5, 7), layout="constrained")
    show_image(ax, mosaic(imgs, 8, 8, shape=getattr(task, "shape", None)))
    ax.axis("off")
    ax.set_title(_title(task, at, f"samples: {how}"), fontsize=9)
    return save(fig, out / "samples.png")


PREVIEW_COLUMNS = (8, 12)  # the checkpoint image: one test image per class, at most 12, at least 8 images


def preview(task, params, arrays: dict[str, Any]) -> np.ndarray:
    """The image an autoencoder logs at every checkpoint, uint8 RGB: the first test image of each class
    (named above it) over its reconstruction; a VAE adds as many samples (the run's fixed eval key: the same
    z at every checkpoint). A plain AE's samples need a mixture fitted to its codes (~0.5 s on the embedded
    sample): they are left to the figures after training."""
    x = np.asarray(arrays["image"], np.float32) / 255.0
    y = np.asarray(arrays["label"])
    low, high = PREVIEW_COLUMNS
    idx = list(_pick(y, 1, _classes(task, y))[:high])
    taken = set(idx)
    idx += [i for i in range(min(len(y), 2 * low)) if i not in taken][: max(0, low - len(idx))]
    recon = _like(task.decode(params, task.encode(params, x[idx])), x[idx])
    rows = [("test", x[idx], [_label(task, int(y[i])) for i in idx]), ("reconstruction", recon, None)]
    if task.cfg.variational:
        rows.append(("samples", task.sample(params, eval_key(task.cfg.seed), len(idx)), None))
    return strips_rgb(rows, shape=_shape(task, x))


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
