"""Activation functions by name, with the initialisation each is normally paired with.

`get(name)` returns an elementwise function; unknown names raise a UserError listing the valid ones.
`leaky_relu` takes its slope from the name: `leaky_relu` (0.01) or `leaky_relu:0.2`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from jaxgen.errors import UserError
from jaxgen.lazy import lazy

# JAX loads at the first call, not at import: `jaxgen config` and a bad --set value check names only.
jax = lazy("jax")
jnp = lazy("jax.numpy")

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


# name -> (function, the weight initialisation it is normally used with)
# Glorot/Xavier keeps the variance of saturating units' inputs near 1; He (variance 2/fan_in) compensates
# for the half of the inputs a rectifier zeroes. "lecun" (1/fan_in) is what SELU-like units want.
REGISTRY: dict[str, tuple[Activation, str]] = {
    "sigmoid": (sigmoid, "glorot_uniform"),
    "tanh": (tanh, "glorot_uniform"),
    "relu": (relu, "he_normal"),
    "leaky_relu": (leaky_relu, "he_normal"),
    "elu": (elu, "he_normal"),
    "gelu": (gelu, "he_normal"),
    "silu": (silu, "he_normal"),
    "softplus": (softplus, "he_normal"),
    "linear": (linear, "glorot_uniform"),
}

NAMES = tuple(REGISTRY)


def _split(name: str) -> tuple[str, float | None]:
    base, _, arg = name.partition(":")
    if base not in REGISTRY:
        raise UserError(
            f"unknown activation {name!r}: choose one of {', '.join(NAMES)} (leaky_relu:SLOPE too)"
        )
    if not arg:
        return base, None
    if base != "leaky_relu":
        raise UserError(f"activation {base!r} takes no parameter; only leaky_relu:SLOPE does")
    try:
        slope = float(arg)
    except ValueError:
        raise UserError(f"leaky_relu slope must be a number, got {arg!r} (e.g. leaky_relu:0.1)") from None
    if not 0 <= slope < 1:
        raise UserError(f"leaky_relu slope must be in [0, 1), got {slope}")
    return base, slope


def validate(name: str) -> str:
    """Return `name` unchanged if it names an activation, else raise a UserError listing valid names."""
    _split(name)
    return name


def get(name: str) -> Activation:
    """The activation function called `name` (e.g. 'relu', 'leaky_relu:0.2')."""
    base, slope = _split(name)
    fn = REGISTRY[base][0]
    return functools.partial(fn, slope=slope) if slope is not None else fn


def default_init(name: str) -> str:
    """The weight initialiser name conventionally paired with this activation."""
    return REGISTRY[_split(name)[0]][1]


# kernel initialisers by their jax.nn.initializers name
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal")


def initializer(name: str) -> jax.nn.initializers.Initializer:
    """A kernel initialiser by name; 'auto' is not resolved here (see default_init)."""
    if name not in INITIALIZERS:
        raise UserError(f"unknown init {name!r}: choose one of auto, {', '.join(INITIALIZERS)}")
    return getattr(jax.nn.initializers, name)()
