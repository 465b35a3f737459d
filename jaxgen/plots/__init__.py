"""Figures drawn from what a run saved (metrics.jsonl, samples/, a restored checkpoint's params).

`draw_run` is the one entry the driver (after training) and `jaxgen plot` both use. One module per task
(classifier, autoencoder, gan) plus common and toy; nothing here imports a task, the driver or jaxgen.runs:
a task's `figures` method calls its module here with itself as the argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw_run(
    run_dir: Path, task: Any = None, params: Any = None, arrays: dict | None = None, step: int | None = None
) -> list[Path]:
    """DIR/plots/: the metric curves, then the task's own figures on `arrays` (its test split) when given;
    every figure names the device of the run (its env.json), not the machine drawing it."""
    from jaxgen.plots import common

    run_dir = Path(run_dir)
    files = common.curves(run_dir)
    if task is not None and arrays is not None and hasattr(task, "figures"):
        device = common.run_device(run_dir)
        files += task.figures(params, arrays, run_dir / "plots", step=step, device=device)
    return files


def samples_rgb(task: Any, samples: Any, arrays: dict | None = None) -> Any:
    """The picture of samples, uint8 RGB [H, W, 3], that `jaxgen sample --out FILE.png` writes and a GAN
    logs at every checkpoint: images [N, H, W, C] in a near-square grid (plots.common.rgb_grid); toy points
    over the data of `arrays` (a test split; None: the points alone), a scatter (2-D) or histogram (1-D)."""
    import numpy as np

    from jaxgen.plots import common, gan

    x = np.asarray(samples)
    if x.ndim == 4:
        return common.rgb_grid(x)
    return gan.points_rgb(task, x, arrays)
