"""Activation and initialiser names, without JAX: what a config checks before anything heavy loads.

The functions themselves are jaxgen.activations'; its REGISTRY lists the same names in the same order.
"""

from __future__ import annotations

from jaxgen.errors import UserError

# name -> the weight initialisation it is normally used with. Glorot/Xavier keeps the variance of saturating
# units' inputs near 1; He (variance 2/fan_in) compensates for the half of the inputs a rectifier zeroes.
PAIRED_INIT: dict[str, str] = {
    "sigmoid": "glorot_uniform",
    "tanh": "glorot_uniform",
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "elu": "he_normal",
    "gelu": "he_normal",
    "silu": "he_normal",
    "softplus": "he_normal",
    "linear": "glorot_uniform",
}
NAMES = tuple(PAIRED_INIT)
# kernel initialisers by their jax.nn.initializers name
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal")


def split(name: str) -> tuple[str, float | None]:
    """('leaky_relu', 0.2) for 'leaky_relu:0.2'; a UserError listing the valid names for a bad one."""
    base, _, arg = name.partition(":")
    if base not in PAIRED_INIT:
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
    split(name)
    return name


def default_init(name: str) -> str:
    """The weight initialiser name conventionally paired with this activation."""
    return PAIRED_INIT[split(name)[0]]


def validate_init(name: str) -> str:
    """Return `name` if it names a kernel initialiser, else a UserError listing them."""
    if name not in INITIALIZERS:
        raise UserError(f"unknown init {name!r}: choose one of {', '.join(INITIALIZERS)}")
    return name
