"""Flax linen modules, used purely: `params = model.init(key, x)`, `model.apply(params, x)`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxgen import activations


class MLP(nn.Module):
    """Dense layers with one activation between them; the last layer is linear (logits)."""

    hidden: Sequence[int]
    num_outputs: int
    activation: str = "relu"
    kernel_init: str = "auto"  # initialiser name; auto = the activation's usual partner
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x_BxD: jax.Array, *, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        name = self.kernel_init
        kernel_init = activations.initializer(
            activations.default_init(self.activation) if name == "auto" else name
        )
        for i, width in enumerate(self.hidden):
            x_BxD = act(nn.Dense(width, kernel_init=kernel_init, name=f"hidden_{i}")(x_BxD))
            if self.dropout > 0:
                x_BxD = nn.Dropout(self.dropout, deterministic=not train)(x_BxD)
        # Glorot for the readout whatever the hidden activation: it feeds a softmax, not a rectifier.
        return nn.Dense(self.num_outputs, kernel_init=nn.initializers.glorot_uniform(), name="out")(x_BxD)


def param_count(params) -> int:
    """Number of scalars in a params pytree."""
    return sum(x.size for x in jax.tree_util.tree_leaves(params))
