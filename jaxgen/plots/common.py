"""What every figure shares: the Agg backend, saving, metric curves, image grids, the run's device.

Nothing in jaxgen.plots imports a task, the driver or jaxgen.runs: figures are drawn from what a run saved
and from the task object they are handed."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxgen.runtime import device_from_env  # noqa: E402
from jaxgen.sinks import CLOCK_KEYS, metric_rows  # noqa: E402  (skips a line cut short by a kill)


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def run_device(run_dir: Path) -> str:
    """The device a run trained on, from its env.json (what its figures name; "?" when unknown)."""
    env = Path(run_dir) / "env.json"
    try:
        return device_from_env(json.loads(env.read_text()))
    except (OSError, ValueError, AttributeError):
        return "?"


def read_metrics(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metric name -> (steps, values) from metrics.jsonl."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in metric_rows(Path(run_dir) / "metrics.jsonl"):
        for k, v in row.items():
            if k != "step" and k not in CLOCK_KEYS and isinstance(v, (int, float)):  # metrics, not times
                series[k].append((row["step"], float(v)))
    return {k: (np.array([s for s, _ in v]), np.array([x for _, x in v])) for k, v in series.items()}


def curves(run_dir: Path) -> list[Path]:
    """plots/curves.png: one panel per metric name, train and test on the same axes."""
    run_dir = Path(run_dir)
    series = read_metrics(run_dir)
    names = sorted({k.split("/", 1)[-1] for k in series} - {"n"})
    # A baseline "pca_X" goes on the panel of X (or latent_X) as a dashed line, not a panel of its own.
    baselines = {}
    for n in names:
        for of in (n[len("pca_") :], "latent_" + n[len("pca_") :]):
            if n.startswith("pca_") and of in names:
                baselines[n] = of
    names = [n for n in names if n not in baselines]
    if not names:
        return []
    device = run_device(run_dir)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, layout="constrained"
    )
    for ax, name in zip(axes.flat, names, strict=False):
        for split, style in (("train", "-"), ("test", "o-")):
            if f"{split}/{name}" in series:
                steps, values = series[f"{split}/{name}"]
                ax.plot(steps, values, style, label=split, ms=3)
        for base, of in baselines.items():
            if of == name and f"test/{base}" in series:
                steps, values = series[f"test/{base}"]
                ax.plot(steps, values, "k--", label="test, PCA baseline", lw=1)
        ax.set_title(name)
        ax.set_xlabel("step")
        if name in ("loss", "grad_norm") and all(
            (series[k][1] > 0).all() for k in series if k.endswith("/" + name)
        ):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"{run_dir.name} ({device})", fontsize=10)
    return [save(fig, run_dir / "plots" / "curves.png")]


# ---------------------------------------------------------------- images

GREY_CMAP = "gray_r"  # grey images: ink dark on white, as the 28 x 28 digits have always been drawn
NAME_CHARS = 14  # class names longer than this are cut (with "…") on ticks, titles and legends


def as_image(image: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """One image as float32 [H, W, C] in [0, 1] (C = 1 grey, 3 colour).

    Takes [H, W, C], [H, W] (grey) or a flat vector: reshaped to `shape` ((H, W, C) or (H, W)) when its size
    matches, else drawn square: grey when its length is a perfect square (784 -> 28 x 28 x 1), colour when a
    third of it is (3,072 -> 32 x 32 x 3). Integer pixels (uint8) are scaled from 0..255; every value is
    clipped to [0, 1]."""
    x = np.asarray(image)
    if x.ndim == 1:
        if shape is not None and int(np.prod(shape)) == x.size:
            x = x.reshape(shape)
        else:
            side = math.isqrt(x.size)
            third = math.isqrt(x.size // 3)
            if side * side == x.size and side > 0:
                x = x.reshape(side, side, 1)
            elif x.size % 3 == 0 and third * third * 3 == x.size and third > 0:
                x = x.reshape(third, third, 3)
            else:
                raise ValueError(
                    f"a flat image of {x.size} values with no shape that fits it (shape={shape}): "
                    "give its (H, W, C)"
                )
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 3):
        raise ValueError(f"an image is [H, W, 1] or [H, W, 3] (or flat); got shape {np.shape(image)}")
    return _unit(x)


def _unit(x: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integers (uint8) from 0..255, floats clipped."""
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / 255.0
    return np.clip(x.astype(np.float32), 0.0, 1.0)


def show_image(ax, image: np.ndarray, shape: tuple[int, ...] | None = None, **imshow_kw):
    """Draw one image (anything as_image takes) on `ax`: C = 1 as a 2-D array in grey ("gray_r", 0..1),
    C = 3 as RGB clipped to [0, 1]. Returns imshow's AxesImage."""
    x = as_image(image, shape)
    if x.shape[-1] == 1:
        return ax.imshow(x[..., 0], cmap=GREY_CMAP, vmin=0, vmax=1, **imshow_kw)
    return ax.imshow(x, **imshow_kw)


def as_images(images: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A batch as float32 [N, H, W, C] in [0, 1]: [N, H, W, C], [N, H, W] grey, or flat rows [N, D] (each
    as as_image reads a flat vector)."""
    x = np.asarray(images)
    if x.ndim == 3 and x.shape[-1] not in (1, 3):
        x = x[..., None]  # [N, H, W] grey
    if x.ndim == 4:
        if x.shape[-1] not in (1, 3):
            raise ValueError(f"images are [N, H, W, 1] or [N, H, W, 3] (or flat rows); got shape {x.shape}")
        return _unit(x)
    if len(x) == 0:
        return np.zeros((0, 1, 1, 1), np.float32)
    return np.stack([as_image(img, shape) for img in x])


def mosaic(
    images: np.ndarray, rows: int, cols: int, gap: int = 2, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The first rows * cols images (anything as_images takes) tiled row-major into one float32
    [rows * (H + gap) - gap, cols * (W + gap) - gap, C] array, with `gap` pixels of white between cells
    (0 for grey, drawn white by "gray_r"; 1 for colour) and white where images run out. Draw it with
    show_image."""
    x = as_images(np.asarray(images)[: rows * cols], shape)
    _, h, w, c = x.shape
    white = 0.0 if c == 1 else 1.0
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), white, np.float32)
    for i, img in enumerate(x):
        r, k = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = img
    return out


def rgb_grid(
    images: np.ndarray, cols: int | None = None, gap: int = 2, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Images (anything as_images takes) tiled in `cols` columns (default: ceil(sqrt(N)), a near-square
    grid) as uint8 RGB [rows * (H + gap) - gap, cols * (W + gap) - gap, 3], drawn as show_image draws them
    (grey: ink dark on white), with white gaps: the picture of `jaxgen sample --out FILE.png` and of a
    GAN's checkpoint samples."""
    n = max(len(images), 1)
    cols = cols or math.ceil(math.sqrt(n))
    grid = mosaic(images, -(-n // cols), cols, gap=gap, shape=shape)
    if grid.shape[-1] == 1:
        grid = np.repeat(1.0 - grid, 3, axis=-1)  # GREY_CMAP's mapping: 0 white, 1 black
    return (grid * 255.0 + 0.5).astype(np.uint8)


def figure_rgb(fig) -> np.ndarray:
    """A figure rendered by Agg as uint8 RGB [H, W, 3], then closed: a figure for TensorBoard or a PNG."""
    fig.canvas.draw()
    rgb = np.array(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    return rgb


def strips_rgb(
    rows: list[tuple[str, np.ndarray, list[str] | None]], shape: tuple[int, ...] | None = None, cell: int = 40
) -> np.ndarray:
    """Rows (label, images, column titles or None) as strips of images, each at least `cell` pixels wide
    (whole pixels, enlarged by an integer factor), the label left of its row, titles above it (slanted where
    one is longer than 3 characters; "a≠b" in red): the small labelled image a checkpoint logs
    (reconstructions, mistakes), rendered as uint8 RGB. Pixels are placed by numpy and only the texts by
    matplotlib (~0.05 s: a figure of axes and ticks took 0.25 s)."""
    h, w = as_images(np.asarray(rows[0][1])[:1], shape).shape[1:3]
    k, gap, char = max(1, math.ceil(cell / max(h, w))), 2, 5.8  # char: pixels of a 7-point character
    longest = [max(map(len, titles), default=0) if titles else 0 for *_, titles in rows]
    tops = [int(0.75 * char * n) + 8 if n > 3 else 14 if n else 0 for n in longest]
    left = int(1.3 * char * max(len(label) for label, *_ in rows)) + 6
    slant = int(0.75 * char * max([n for n in longest if n > 3], default=0))
    cols = max(len(images) for _, images, _ in rows)
    width, height = left + cols * (w * k + gap) + slant + 4, sum(tops) + len(rows) * (h * k + gap) + 4
    canvas = np.full((height, width, 3), 255, np.uint8)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    y = 0
    for (label, images, titles), top, n in zip(rows, tops, longest, strict=True):
        y += top
        cells = rgb_grid(np.asarray(images), cols=len(images), gap=0, shape=shape).repeat(k, 0).repeat(k, 1)
        for i in range(len(images)):  # each image enlarged k times, the gaps kept at `gap` pixels
            x = left + i * (w * k + gap)
            canvas[y : y + h * k, x : x + w * k] = cells[:, i * w * k : (i + 1) * w * k]
        for i, title in enumerate(titles or ()):
            x = left + i * (w * k + gap) + w * k / 2
            fig.text(x / width, 1 - (y - 2) / height, title, fontsize=7, rotation=45 if n > 3 else 0,
                     rotation_mode="anchor", ha="left" if n > 3 else "center", va="bottom",
                     color="red" if "≠" in title else "black")  # fmt: skip
        fig.text((left - 4) / width, 1 - (y + h * k / 2) / height, label, fontsize=8, ha="right", va="center")
        y += h * k + gap
    fig.figimage(canvas, 0, 0, zorder=0)
    return figure_rgb(fig)


def short_name(name: str, n: int = NAME_CHARS) -> str:
    """A class name cut to n characters ("smileys_emotion" -> "smileys_emoti…") for ticks and titles."""
    name = str(name)
    return name if len(name) <= n else name[: n - 1] + "…"


def class_label(names: tuple[str, ...], c: int, n: int = NAME_CHARS) -> str:
    """Class c's name (cut to n characters), or its number where `names` has none."""
    return short_name(names[c], n) if 0 <= c < len(names) else str(c)


def image_grid(
    images: np.ndarray,
    path: Path,
    *,
    titles: list[str] | None = None,
    cols: int = 8,
    shape: tuple[int, ...] | None = None,
) -> Path:
    """Images [N, H, W, C] (grey or colour; uint8 0..255 or float 0..1; flat rows are read as as_image
    does) in a grid, with optional per-image titles. Long titles ("pred≠true" of long class names) are
    broken at "≠" and set smaller."""
    n = len(images)
    rows = -(-n // cols)
    longest = max((len(t) for t in titles), default=0) if titles else 0
    wrap = longest > 10
    fontsize = 7 if not wrap else 6
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(cols * (1.1 if not wrap else 1.3), rows * (1.25 if not wrap else 1.45)),
        squeeze=False,
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            show_image(ax, images[i], shape)
            if titles:
                title = titles[i].replace("≠", "\n≠") if wrap else titles[i]
                ax.set_title(title, fontsize=fontsize, color="red" if "≠" in titles[i] else "black")
    return save(fig, path)


def prediction_grid(
    images: np.ndarray, labels: np.ndarray, pred: np.ndarray, path: Path, names: tuple[str, ...] = ()
) -> Path:
    """Test images titled with the predicted class (by name where `names` are given, cut to 14 characters);
    a wrong one shows 'pred≠true' in red."""

    def n(c: int) -> str:
        return class_label(names, int(c))

    titles = [n(p) if p == t else f"{n(p)}≠{n(t)}" for p, t in zip(pred, labels, strict=True)]
    return image_grid(images, path, titles=titles)


def confusion(
    labels: np.ndarray, pred: np.ndarray, num_classes: int, path: Path, names: tuple[str, ...] = ()
) -> Path:
    """Confusion matrix (rows: true class, columns: predicted) with counts."""
    m = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(m, (labels, pred), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(m, cmap="Blues")
    for i in range(num_classes):
        for j in range(num_classes):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    m[i, j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if m[i, j] > m.max() / 2 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ticks = [class_label(names, c) for c in range(num_classes)]
    ax.set_xticks(range(num_classes), ticks, rotation=90 if max(map(len, ticks)) > 2 else 0, fontsize=7)
    ax.set_yticks(range(num_classes), ticks, fontsize=7)
    ax.set_title(f"accuracy {np.trace(m) / max(m.sum(), 1):.4f} on {m.sum()} images")
    return save(fig, path)
