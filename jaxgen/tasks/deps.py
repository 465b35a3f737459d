"""The heavy modules every task file uses, loaded at first use (jaxgen.lazy).

A task file's Config class is what the CLI's edge reads (--help, `jaxgen config`, a bad --set value)
before JAX loads; its Task code imports JAX, optax and flax here, at the first attribute it reads:

    from jaxgen.tasks.deps import base, batches, jax, jnp, models, optax
"""

from jaxgen.lazy import lazy

jax = lazy("jax")
jnp = lazy("jax.numpy")
optax = lazy("optax")
base = lazy("jaxgen.tasks.base")  # State, the Task contract, in_batches, sampled_norm
models = lazy("jaxgen.models")
batches = lazy("jaxgen.data.batches")

__all__ = ["base", "batches", "jax", "jnp", "models", "optax"]
