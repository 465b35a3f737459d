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
    def __call__(self, x_BxD: jax.Array, *, train: bool = False, features: bool = False):
        """Logits; with features=True, (logits, last hidden layer's activations)."""
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
        out = nn.Dense(self.num_outputs, kernel_init=nn.initializers.glorot_uniform(), name="out")(x_BxD)
        return (out, x_BxD) if features else out


class AutoencoderNet(nn.Module):
    """Encoder 784 -> hidden -> latent (VAE: mean and log-variance), mirrored decoder -> 784 logits."""

    hidden: Sequence[int]
    latent_dim: int
    activation: str = "relu"
    kernel_init: str = "auto"
    variational: bool = False
    dropout: float = 0.0
    out_dim: int = 784

    def setup(self):
        code = 2 * self.latent_dim if self.variational else self.latent_dim
        self.encoder = MLP(self.hidden, code, self.activation, self.kernel_init, self.dropout)
        widths = tuple(reversed(self.hidden))
        self.decoder = MLP(widths, self.out_dim, self.activation, self.kernel_init, self.dropout)

    def encode(self, x_BxD: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array | None]:
        """(mean, log-variance) of q(z | x); a plain autoencoder's log-variance is None."""
        h = self.encoder(x_BxD, train=train)
        if self.variational:
            return h[:, : self.latent_dim], h[:, self.latent_dim :]
        return h, None

    def decode(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        """Pixel logits of the images that codes z decode to."""
        return self.decoder(z_BxZ, train=train)

    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        return self.decode(self.encode(x_BxD, train)[0], train)


def param_count(params) -> int:
    """Number of scalars in a params pytree."""
    return sum(x.size for x in jax.tree_util.tree_leaves(params))


class Generator(nn.Module):
    """z -> MLP -> out_dim: sigmoid pixels in [0, 1] for images, linear coordinates for toys."""

    hidden: Sequence[int]
    out_dim: int
    activation: str = "leaky_relu:0.2"
    output: str = "linear"  # "sigmoid" (images) or "linear" (toy points)
    scale: float = 1.0  # linear outputs are multiplied by it (the data's scale: the MLP works at order 1)

    @nn.compact
    def __call__(self, z_BxZ: jax.Array) -> jax.Array:
        x = MLP(self.hidden, self.out_dim, self.activation, name="mlp")(z_BxZ)
        return jax.nn.sigmoid(x) if self.output == "sigmoid" else self.scale * x


class Discriminator(nn.Module):
    """x -> MLP -> one logit per row (a row is `pack` samples concatenated under PacGAN)."""

    hidden: Sequence[int]
    activation: str = "leaky_relu:0.2"
    scale: float = 1.0  # inputs are divided by it (the data's scale: the MLP sees order-1 inputs)

    @nn.compact
    def __call__(self, x_BxD: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, self.activation, name="mlp")(x_BxD / self.scale)[:, 0]
