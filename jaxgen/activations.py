"""Activation functions by name, with the initialisation each is normally paired with.

`get(name)` returns an elementwise function; unknown names raise a UserError listing the valid ones.
`leaky_relu` takes its slope from the name: `leaky_relu` (0.01) or `leaky_relu:0.2`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgen.activation_names import INITIALIZERS, NAMES, PAIRED_INIT, default_init, split, validate
from jaxgen.errors import UserError

Activation = Callable[..., Any]  # jax.Array -> jax.Array, elementwise


def sigmoid(x: jax.Array) -> jax.Array:
    """1 / (1 + e^-x); derivative at most 1/4, which is why deep sigmoid nets' gradients vanish."""
    return jax.nn.sigmoid(x)


def tanh(x: jax.Array) -> jax.Array:
    """Zero-centred sigmoid: 2 sigmoid(2x) - 1; derivative at most 1, still saturating."""
    return jnp.tanh(x)


def relu(x: jax.Array) -> jax.Array:
    """max(0, x): gradient 1 or 0, so a unit whose input is always negative is dead."""
    return jnp.maximum(x, 0)


def leaky_relu(x: jax.Array, slope: float = 0.01) -> jax.Array:
    """x for x > 0, slope * x otherwise: a small gradient everywhere keeps units alive."""
    return jnp.where(x > 0, x, slope * x)


def elu(x: jax.Array) -> jax.Array:
    """x for x > 0, e^x - 1 otherwise: smooth, negative outputs push mean activations to zero."""
    return jax.nn.elu(x)


def gelu(x: jax.Array) -> jax.Array:
    """x * Phi(x) (exact erf form): the Transformer default."""
    return jax.nn.gelu(x, approximate=False)


def silu(x: jax.Array) -> jax.Array:
    """x * sigmoid(x) (swish)."""
    return jax.nn.silu(x)


def softplus(x: jax.Array) -> jax.Array:
    """log(1 + e^x), a smooth ReLU, computed without overflow."""
    return jax.nn.softplus(x)


def linear(x: jax.Array) -> jax.Array:
    """The identity: a stack of linear layers is then one linear map."""
    return x


def log_softmax(logits: jax.Array, axis: int = -1) -> jax.Array:
    """log softmax, stable at any scale: shift by the max before exponentiating."""
    shifted = logits - jax.lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def softmax(logits: jax.Array, axis: int = -1) -> jax.Array:
    """A distribution over the last axis; logits of +-1000 give no inf or nan."""
    shifted = logits - jax.lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


# name -> function; the weight initialisation each is normally used with, the names and their parsing live
# in jaxgen.activation_names (no JAX: configs check names before anything heavy loads).
REGISTRY: dict[str, Activation] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "gelu": gelu,
    "silu": silu,
    "softplus": softplus,
    "linear": linear,
}
assert tuple(REGISTRY) == NAMES, "jaxgen.activation_names.PAIRED_INIT lists the same names in the same order"

__all__ = [
    "INITIALIZERS",
    "NAMES",
    "PAIRED_INIT",
    "REGISTRY",
    "default_init",
    "get",
    "initializer",
    "validate",
]


def get(name: str) -> Activation:
    """The activation function called `name` (e.g. 'relu', 'leaky_relu:0.2')."""
    base, slope = split(name)
    fn = REGISTRY[base]
    return functools.partial(fn, slope=slope) if slope is not None else fn


def initializer(name: str) -> jax.nn.initializers.Initializer:
    """A kernel initialiser by name; 'auto' is not resolved here (see default_init)."""
    if name not in INITIALIZERS:
        raise UserError(f"unknown init {name!r}: choose one of auto, {', '.join(INITIALIZERS)}")
    return getattr(jax.nn.initializers, name)()
