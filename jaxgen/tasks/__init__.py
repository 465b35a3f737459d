"""The one list of tasks, TASKS = {name: (ConfigClass, TaskClass)}: the CLI resolves a task name here once,
at its edge, and everything below it works with the config class (whose TASK names it back).

Adding a task is one file in this folder (its Config class and its Task class, the contract in base.py)
and one line in TASKS. Importing this registry loads no JAX: the task files load it at first use.
"""

from __future__ import annotations

from typing import Any

from jaxgen import config
from jaxgen.config import TrainConfig
from jaxgen.data import Dataset
from jaxgen.errors import UserError
from jaxgen.tasks.autoencoder import AEConfig, Autoencoder
from jaxgen.tasks.classifier import Classifier, MLPConfig
from jaxgen.tasks.gan import GAN, GANConfig

TASKS: dict[str, tuple[type[TrainConfig], type]] = {
    "mlp": (MLPConfig, Classifier),
    "ae": (AEConfig, Autoencoder),
    "gan": (GANConfig, GAN),
}

__all__ = ["TASKS", "build", "config_class", "make_config", "resolve", "task_class"]


def config_class(name: str) -> type[TrainConfig]:
    """The config class of task `name`; an unknown name is a one-line error listing the tasks."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name][0]


def make_config(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The validated config of task `name` with `overrides` applied."""
    return config.make(config_class(name), overrides)


def task_class(cfg: TrainConfig) -> type:
    """The task class that runs `cfg` (found by its config class)."""
    return TASKS[type(cfg).TASK][1]


def resolve(cfg: TrainConfig, ds: Dataset) -> TrainConfig:
    """The config as it runs on `ds`: the task's "chosen for the data" defaults filled in (identity for a
    task without a `resolve`). Idempotent; the driver records the result in DIR/resolved.json."""
    fn = getattr(task_class(cfg), "resolve", None)
    return cfg if fn is None else fn(cfg, ds)


def build(cfg: TrainConfig, ds: Dataset) -> Any:
    """The task that runs `cfg` (resolved for `ds` first) on data shaped like `ds`."""
    return task_class(cfg)(resolve(cfg, ds), ds)
