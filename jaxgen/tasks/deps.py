"""The heavy modules every task file uses, loaded at first use (jaxgen.lazy).

A task file's Config class is what the CLI's edge reads (--help, `jaxgen config`, a bad --set value)
before JAX loads; its Task code imports JAX, optax and flax here, at the first attribute it reads:

    from jaxgen.tasks.deps import base, batches, jax, jnp, models, optax
"""

from typing import TYPE_CHECKING

from jaxgen.lazy import lazy

if TYPE_CHECKING:  # the same modules, seen by import-linter and type checkers as the imports they are
    import jax
    import jax.numpy as jnp
    import optax

    from jaxgen import models
    from jaxgen.data import batches
    from jaxgen.tasks import base

jax = lazy("jax")  # noqa: F811
jnp = lazy("jax.numpy")  # noqa: F811
optax = lazy("optax")  # noqa: F811
base = lazy("jaxgen.tasks.base")  # noqa: F811  # State, the Task contract, in_batches, sampled_norm
models = lazy("jaxgen.models")  # noqa: F811
batches = lazy("jaxgen.data.batches")  # noqa: F811

__all__ = ["base", "batches", "jax", "jnp", "models", "optax"]
