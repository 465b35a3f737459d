"""A training run's compiled chunk of steps: the driver's (`train.Loop`), the seed groups' (`seeds`) and the
benchmarks' one program.

`run_chunk` is `length` steps under lax.scan, pure in its arguments (so it also runs under `jax.vmap`
over seeds); `place` puts a run's initial state, data and keys on the mesh; `compile_chunk` compiles the
chunk ahead of time with the state donated and one device flag for NaN/inf.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen.data import batches
from jaxgen.runtime import split_keys
from jaxgen.tasks.base import State, Task


def run_chunk(
    task: Task,
    batch_size: int,
    length: int,
    batch_sharding: NamedSharding | None,
    state: State,
    train: dict[str, jax.Array],
    data_key: jax.Array,
    loop_key: jax.Array,
    shuffles: tuple[jax.Array, Any] | None = None,
) -> tuple[State, dict[str, jax.Array]]:
    """`length` steps under lax.scan; returns the new state and each step's metrics stacked.

    Pure in its arguments, so it also runs under `jax.vmap` over (state, data_key, loop_key) to train
    several seeds as one program (then pass batch_sharding=None). `shuffles`: the chunk's epoch shuffles
    from batches.EpochShuffles (the driver's: each epoch's computed once); None computes them here.
    """

    # Each epoch's shuffle once per chunk at most, never once per step (a sort of the whole training
    # set): the batches are batches.batch_at's, bit for bit.
    if shuffles is None:
        shuffles = batches.chunk_shuffles(train, data_key, state.step, batch_size, length)
    perms, first_epoch = shuffles

    def body(state: State, _):
        batch = batches.batch_from(train, perms, first_epoch, state.step, batch_size)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        return task.step(state, batch, jax.random.fold_in(loop_key, state.step))

    return jax.lax.scan(body, state, None, length=length)


def place(task: Task, seed: int, train_np: dict, mesh: jax.sharding.Mesh) -> tuple[State, dict, Any, Any]:
    """(initial state, train arrays, data_key, loop_key) as global replicated arrays on `mesh`.

    Made inside jit so that every process of a multi-host run holds the same values.
    """
    replicated = NamedSharding(mesh, P())
    init_key, data_key, loop_key = jax.jit(split_keys, static_argnums=0, out_shardings=replicated)(seed)
    state = jax.jit(task.init, out_shardings=replicated)(init_key)
    return state, jax.device_put(train_np, replicated), data_key, loop_key


def all_finite(tree: Any) -> jax.Array:
    """One boolean on the device: every floating-point leaf of `tree` is free of NaN and infinity."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def compile_chunk(
    task: Task, batch_size: int, length: int, mesh, state, train, data_key, loop_key, shuffles=None
):
    """`run_chunk` of `length` steps, batch sharded over `mesh`, state donated, compiled ahead of time.

    Called as fn(state, train, data_key, loop_key[, shuffles]) -- with shuffles when compiled with an
    example of them (batches.EpochShuffles.for_chunk) -- and returns (state, metrics, finite): `finite` is
    one device flag, False when any state leaf is NaN/inf.
    """
    chunk = functools.partial(run_chunk, task, batch_size, length, NamedSharding(mesh, P("data")))

    def checked(state, train, data_key, loop_key, *shuffles):
        state, metrics = chunk(state, train, data_key, loop_key, *shuffles)
        return state, metrics, all_finite(state)

    args = (state, train, data_key, loop_key) + (() if shuffles is None else (shuffles,))
    return jax.jit(checked, donate_argnums=0).lower(*args).compile()
