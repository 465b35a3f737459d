"""Classifier figures: test images with predicted (and, where wrong, true) labels, the confusion matrix;
on 2-D toys p(y | x) over the plane with the decision boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen.plots import toy
from jaxgen.plots.common import class_label, confusion, prediction_grid, strips_rgb


def figures(
    task: Any, params: Any, arrays: dict[str, Any], out: Path, step: int | None = None, device: str = "?"
) -> list[Path]:
    """Every classifier figure for the test split `arrays`, into `out`."""
    out = Path(out)
    if task.kind == "toy":
        if task.shape != (2,):
            return []
        return [toy.class_probability(task, params, arrays, out / "p_y_given_x.png", step, device)]
    images, labels = np.asarray(arrays["image"]), np.asarray(arrays["label"])
    pred = task.logits(params, images).argmax(-1)
    return [
        prediction_grid(images[:64], labels[:64], pred[:64], out / "predictions.png", task.class_names),
        confusion(labels, pred, task.num_classes, out / "confusion.png", task.class_names),
    ]


PREVIEW_N, PREVIEW_OF = 16, 1000  # the checkpoint image: the first 16 mistakes among 1,000 test images


def preview(task: Any, params: Any, arrays: dict[str, Any]) -> np.ndarray:
    """The image a classifier of images logs at every checkpoint, uint8 RGB: the first misclassified test
    images (of the first 1,000; the first images where it makes fewer mistakes), titled "predicted≠true"."""
    images, labels = np.asarray(arrays["image"])[:PREVIEW_OF], np.asarray(arrays["label"])[:PREVIEW_OF]
    pred = task.logits(params, images).argmax(-1)
    order = np.concatenate([np.flatnonzero(pred != labels), np.flatnonzero(pred == labels)])[:PREVIEW_N]

    def name(c: int) -> str:
        return class_label(task.class_names, int(c))

    pairs = zip(pred[order], labels[order], strict=True)
    titles = [name(p) if p == t else f"{name(p)}≠{name(t)}" for p, t in pairs]
    half = -(-len(order) // 2)
    rows = [("", images[order[:half]], titles[:half]), ("", images[order[half:]], titles[half:])]
    return strips_rgb([r for r in rows if len(r[1])], shape=task.shape)
