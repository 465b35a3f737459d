"""Tasks by name: each builds from (config, dataset) and plugs into the one driver in jaxgen.train."""

from __future__ import annotations

from jaxgen.config import TrainConfig
from jaxgen.data import Dataset
from jaxgen.errors import UserError
from jaxgen.tasks.base import State, Task

__all__ = ["State", "Task", "build"]


def build(name: str, cfg: TrainConfig, ds: Dataset) -> Task:
    """The task `name` configured by `cfg` for data shaped like `ds`."""
    if name == "mlp":
        from jaxgen.tasks.classifier import Classifier

        return Classifier(cfg, ds)
    raise UserError(f"unknown task {name!r}: choose mlp (ae and gan are not built yet)")
