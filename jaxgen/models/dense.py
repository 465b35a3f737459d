"""Dense networks (arch=mlp): the MLP, the MLP autoencoder, the MLP GAN's generator and discriminator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import activations


class MLP(nn.Module):
    """Dense layers with one activation between them; the last layer is linear (logits)."""

    hidden: Sequence[int]
    num_outputs: int
    activation: str = "relu"
    kernel_init: str = "auto"  # initialiser name; auto = the activation's usual partner
    dropout: float = 0.0
    dtype: Any = None  # compute dtype of the dense layers (None: float32); parameters stay float32

    @nn.compact
    def __call__(self, x_BxD: jax.Array, *, train: bool = False, features: bool = False):
        """Logits; with features=True, (logits, last hidden layer's activations). Images [B, H, W, C] are
        read as the flat vectors [B, H * W * C] they are points of."""
        x_BxD = x_BxD.reshape(x_BxD.shape[0], -1)
        act = activations.get(self.activation)
        name = self.kernel_init
        kernel_init = activations.initializer(
            activations.default_init(self.activation) if name == "auto" else name
        )
        for i, width in enumerate(self.hidden):
            x_BxD = act(nn.Dense(width, kernel_init=kernel_init, dtype=self.dtype, name=f"hidden_{i}")(x_BxD))
            if self.dropout > 0:
                x_BxD = nn.Dropout(self.dropout, deterministic=not train)(x_BxD)
        # Glorot for the readout whatever the hidden activation: it feeds a softmax, not a rectifier.
        glorot = nn.initializers.glorot_uniform()
        out = nn.Dense(self.num_outputs, kernel_init=glorot, dtype=self.dtype, name="out")(x_BxD)
        if self.dtype is not None:  # losses, softmax and metrics in float32 whatever the compute dtype
            out, x_BxD = out.astype(jnp.float32), x_BxD.astype(jnp.float32)
        return (out, x_BxD) if features else out


def compute_dtype(name: str) -> Any:
    """The `dtype` config value as a flax compute dtype: None (float32) or jnp.bfloat16."""
    return None if name == "float32" else jnp.dtype(name)


class AutoencoderNet(nn.Module):
    """Encoder H*W*C -> hidden -> latent (VAE: mean and log-variance), mirrored decoder -> H*W*C logits
    shaped [B, *shape] (`shape`: the data's, (H, W, C))."""

    hidden: Sequence[int]
    latent_dim: int
    activation: str = "relu"
    kernel_init: str = "auto"
    variational: bool = False
    dropout: float = 0.0
    shape: Sequence[int] = (28, 28, 1)
    dtype: Any = None  # compute dtype (None: float32)

    def setup(self):
        code = 2 * self.latent_dim if self.variational else self.latent_dim
        self.encoder = MLP(self.hidden, code, self.activation, self.kernel_init, self.dropout, self.dtype)
        widths = tuple(reversed(self.hidden))
        out_dim = math.prod(self.shape)
        self.decoder = MLP(widths, out_dim, self.activation, self.kernel_init, self.dropout, self.dtype)

    def encode(self, x_BxD: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array | None]:
        """(mean, log-variance) of q(z | x); a plain autoencoder's log-variance is None."""
        h = self.encoder(x_BxD, train=train)
        if self.variational:
            return h[:, : self.latent_dim], h[:, self.latent_dim :]
        return h, None

    def decode(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        """Pixel logits [B, *shape] of the images that codes z decode to."""
        return self.decoder(z_BxZ, train=train).reshape(z_BxZ.shape[0], *self.shape)

    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        return self.decode(self.encode(x_BxD, train)[0], train)


def param_count(params) -> int:
    """Number of scalars in a params pytree."""
    return sum(x.size for x in jax.tree_util.tree_leaves(params))


class Generator(nn.Module):
    """z -> MLP -> a sample of `shape`: sigmoid pixels in [0, 1] for images ((H, W, C)), linear coordinates
    for toys ((D,))."""

    hidden: Sequence[int]
    shape: Sequence[int]
    activation: str = "leaky_relu:0.2"
    output: str = "linear"  # "sigmoid" (images) or "linear" (toy points)
    scale: float = 1.0  # linear outputs are multiplied by it (the data's scale: the MLP works at order 1)
    dtype: Any = None  # compute dtype (None: float32)

    @nn.compact
    def __call__(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        x = MLP(self.hidden, math.prod(self.shape), self.activation, dtype=self.dtype, name="mlp")(z_BxZ)
        x = x.reshape(z_BxZ.shape[0], *self.shape)
        return jax.nn.sigmoid(x) if self.output == "sigmoid" else self.scale * x


class Discriminator(nn.Module):
    """x -> MLP -> one logit per row (a row is `pack` samples concatenated under PacGAN; images are read
    flat)."""

    hidden: Sequence[int]
    activation: str = "leaky_relu:0.2"
    scale: float = 1.0  # inputs are divided by it (the data's scale: the MLP sees order-1 inputs)
    dtype: Any = None  # compute dtype (None: float32)

    @nn.compact
    def __call__(self, x_BxD: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, self.activation, dtype=self.dtype, name="mlp")(x_BxD / self.scale)[:, 0]


# ---------------------------------------------------------------- convolutional networks (arch=conv)
#
