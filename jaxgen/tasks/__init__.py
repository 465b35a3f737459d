"""The one list of tasks, TASKS = {name: (ConfigClass, TaskClass)}, read by the CLI, config and build."""

from __future__ import annotations

from jaxgen.config import AEConfig, GANConfig, MLPConfig, TrainConfig
from jaxgen.data import Dataset
from jaxgen.errors import UserError
from jaxgen.tasks.autoencoder import Autoencoder
from jaxgen.tasks.base import State, Task
from jaxgen.tasks.classifier import Classifier
from jaxgen.tasks.gan import GAN

TASKS: dict[str, tuple[type[TrainConfig], type]] = {
    "mlp": (MLPConfig, Classifier),
    "ae": (AEConfig, Autoencoder),
    "gan": (GANConfig, GAN),
}

__all__ = ["TASKS", "State", "Task", "build"]


def build(name: str, cfg: TrainConfig, ds: Dataset) -> Task:
    """The task `name` configured by `cfg` for data shaped like `ds`."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name][1](cfg, ds)
