"""The task contract: what the one driver (jaxgen.train) and the CLI need from a task.

A task is built from (config, dataset) and is a bundle of pure functions over one State pytree:
  init(key) -> State
  step(state, batch, key) -> (state, metrics)        one jit region, any number of optimizers inside
  evaluate(params, arrays, key, judge=None) -> dict   cheap enough for every checkpoint; ints stay ints
Optional (the driver and CLI look for them with hasattr):
  sample(params, key, n) -> np.ndarray                what `jaxgen sample` writes: (n, D) float32
  snapshot(params, step, run_dir) -> None             at every checkpoint, e.g. fixed-noise samples
  figures(params, arrays, out_dir, step=None) -> list  after training and from `jaxgen plot` (step for titles)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import jax
from flax import struct

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@struct.dataclass
class State:
    """Everything a run needs besides its config: params, optimizer state(s), step counter.

    A GAN keeps {"g": ..., "d": ...} in both `params` and `opt_state`; the driver does not care.
    """

    step: jax.Array  # int32 scalar: optimizer steps taken (GAN: generator steps)
    params: Any
    opt_state: Any


class Task(Protocol):
    """A training problem the driver can run; every method is pure and jit-able except the host-side ones."""

    name: str
    # Examples the driver draws per step: batch_size, or d_steps * batch_size for a GAN whose step
    # reshapes them into one batch per discriminator update. Also what samples/s counts.
    examples_per_step: int
    # Train metrics shown on the progress bar (the first one is the headline).
    headline: tuple[str, ...]

    def init(self, key: jax.Array) -> State: ...

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]: ...

    def evaluate(
        self, params: Any, arrays: dict[str, Any], key: jax.Array, judge: Any = None
    ) -> dict[str, float | int]: ...

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None
    ) -> list[Path]: ...
