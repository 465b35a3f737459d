"""The one list of tasks, TASKS = {name: (ConfigClass, TaskClass)}: each task's config (no JAX) is in
jaxgen/configs/, its code here. The CLI's edge reads jaxgen.configs only; training, evaluation and the rest
build a task from a resolved config (a new run's, or a run's record).

Adding a task is one file in jaxgen/configs/ (its Config class and table of defaults), one file here (its
Task class, the contract in base.py), and one line in each registry.
"""

from __future__ import annotations

from typing import Any

from jaxgen.config import TrainConfig
from jaxgen.configs import CONFIGS, config_class, make_config, resolve
from jaxgen.data import Dataset
from jaxgen.tasks.autoencoder import Autoencoder
from jaxgen.tasks.classifier import Classifier
from jaxgen.tasks.gan import GAN

TASKS: dict[str, tuple[type[TrainConfig], type]] = {
    "mlp": (CONFIGS["mlp"], Classifier),
    "ae": (CONFIGS["ae"], Autoencoder),
    "gan": (CONFIGS["gan"], GAN),
}

__all__ = ["TASKS", "build", "config_class", "make_config", "resolve", "task_class"]


def task_class(cfg: TrainConfig) -> type:
    """The task class that runs `cfg` (found by its config class)."""
    return TASKS[type(cfg).TASK][1]


def build(cfg: TrainConfig, ds: Dataset) -> Any:
    """The task that runs `cfg` on data shaped like `ds` (resolved first: idempotent on a resolved one)."""
    return task_class(cfg)(resolve(cfg, ds), ds)
