"""What the one driver needs from a task: a State pytree and init / step / evaluate."""

from __future__ import annotations

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
    """A training problem the driver can run; every method is pure and jit-able except `figures`."""

    name: str
    samples_per_step: int  # examples consumed per step, for samples/s

    def init(self, key: jax.Array) -> State: ...

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]: ...

    def evaluate(self, params: Any, arrays: dict[str, jax.Array]) -> dict[str, float]: ...

    def figures(self, params: Any, arrays: dict[str, Any], out_dir) -> list: ...
