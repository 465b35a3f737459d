"""What every figure shares: the Agg backend, saving, metric curves, image grids, the run's device.

Nothing in jaxgen.plots imports a task, the driver or jaxgen.runs: figures are drawn from what a run saved
and from the task object they are handed."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxgen.runtime import device_from_env  # noqa: E402
from jaxgen.sinks import metric_rows  # noqa: E402  (skips a line cut short by a kill)


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
            if k != "step" and isinstance(v, (int, float)):
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


def image_grid(
    images_Nx784: np.ndarray, path: Path, *, titles: list[str] | None = None, cols: int = 8
) -> Path:
    """Images (uint8 0..255 or float 0..1) in a grid, with optional per-image titles."""
    n = len(images_Nx784)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.25), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(images_Nx784[i]).reshape(28, 28), cmap="gray_r")
            if titles:
                ax.set_title(titles[i], fontsize=7, color="red" if "≠" in titles[i] else "black")
    return save(fig, path)


def prediction_grid(
    images: np.ndarray, labels: np.ndarray, pred: np.ndarray, path: Path, names: tuple[str, ...] = ()
) -> Path:
    """Test images titled with the predicted class (by name where `names` are given); a wrong one shows
    'pred≠true' in red."""

    def n(c: int) -> str:
        return names[c] if c < len(names) else str(c)

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
    ticks = [names[c] if c < len(names) else str(c) for c in range(num_classes)]
    ax.set_xticks(range(num_classes), ticks, rotation=90 if max(map(len, ticks)) > 2 else 0, fontsize=7)
    ax.set_yticks(range(num_classes), ticks, fontsize=7)
    ax.set_title(f"accuracy {np.trace(m) / max(m.sum(), 1):.4f} on {m.sum()} images")
    return save(fig, path)
