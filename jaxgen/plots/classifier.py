"""Classifier figures: test images with predicted (and, where wrong, true) labels, the confusion matrix;
on 2-D toys p(y | x) over the plane with the decision boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxgen.plots import toy
from jaxgen.plots.common import confusion, prediction_grid


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
