"""Convolutional networks (arch=conv): the CNN classifier, the conv autoencoder, DCGAN's G and D.

Images arrive as [B, H, W, C] in [0, 1] (any size and channel count; PacGAN's packed rows as
[B, pack, H, W, C]); a decoder or generator is told the image shape it makes (`shape`, from the data). Every
convolution is jaxgen.convs' (nn.Conv's parameters; shifted slices and one matrix product on the CPU,
XLA's convolution elsewhere: `impl`). BatchNorm (`norm="batch"`) keeps its running mean and variance
in the "batch_stats" collection, beside "params" in the variables a task keeps in its State.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import activations, convs

NORMS = ("batch", "none")


def _norm(norm: str, train: bool, name: str):
    """The normalisation after a convolution: BatchNorm (running statistics when not training) or none."""
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)
    return lambda x: x


def _image(x: jax.Array) -> jax.Array:
    """Images [B, H, W, C] as they are; PacGAN's packed rows [B, pack, H, W, C] as [B, H, W, pack * C]
    (the samples side by side as channels)."""
    if x.ndim == 5:
        b, p, h, w, c = x.shape
        return x.transpose(0, 2, 3, 1, 4).reshape(b, h, w, p * c)
    return x


class ConvNet(nn.Module):
    """CNN classifier: per stage a 3x3 convolution of `channels[i]` maps, (BatchNorm), the activation and
    2x2 max pooling (28 -> 14 -> 7 -> 3; 32 -> 16 -> 8 -> 4); then dense layers of `head` widths with
    dropout; linear logits."""

    channels: Sequence[int]
    head: Sequence[int]
    num_outputs: int
    activation: str = "relu"
    norm: str = "batch"
    dropout: float = 0.0
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, features: bool = False):
        act = activations.get(self.activation)
        he = nn.initializers.he_normal()
        for i, width in enumerate(self.channels):
            x = convs.Conv(width, 3, use_bias=self.norm == "none", impl=self.impl, kernel_init=he,
                           dtype=self.dtype, name=f"conv_{i}")(x)  # fmt: skip
            x = convs.max_pool(act(_norm(self.norm, train, f"norm_{i}")(x)))
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.head):
            x = act(nn.Dense(width, kernel_init=he, dtype=self.dtype, name=f"head_{i}")(x))
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        out = nn.Dense(self.num_outputs, kernel_init=nn.initializers.glorot_uniform(), dtype=self.dtype,
                       name="out")(x)  # fmt: skip
        if self.dtype is not None:
            out, x = out.astype(jnp.float32), x.astype(jnp.float32)
        return (out, x) if features else out


class ConvEncoder(nn.Module):
    """H x W x C -> stride-2 3x3 convolutions of `channels` (28 -> 14 -> 7) -> dense `outputs`."""

    channels: Sequence[int]
    outputs: int
    activation: str = "relu"
    norm: str = "none"
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        for i, width in enumerate(self.channels):
            bias = self.norm == "none" or i == 0
            he = nn.initializers.he_normal()
            conv = convs.Conv(width, 3, 2, use_bias=bias, impl=self.impl, kernel_init=he, dtype=self.dtype,
                              name=f"conv_{i}")  # fmt: skip
            x = conv(x)
            if i > 0:  # no normalisation on the layer that sees the pixels (DCGAN's discriminator rule)
                x = _norm(self.norm, train, f"norm_{i}")(x)
            x = act(x)
        x = nn.Dense(self.outputs, dtype=self.dtype, name="out")(x.reshape(x.shape[0], -1))
        return x.astype(jnp.float32) if self.dtype is not None else x


class ConvDecoder(nn.Module):
    """z -> dense to an (H / 2^stages) x (W / 2^stages) x channels[-1] grid -> stride-2 4x4 transposed
    convolutions of the reversed `channels` (ending in C maps) -> [B, H, W, C] linear outputs (pixel
    logits). `shape` = (H, W, C), the data's."""

    channels: Sequence[int]
    shape: Sequence[int]
    activation: str = "relu"
    norm: str = "none"
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        h, w, c = self.shape
        h0, w0 = h >> len(self.channels), w >> len(self.channels)
        widths = tuple(reversed(self.channels))
        x = nn.Dense(h0 * w0 * widths[0], use_bias=self.norm == "none", dtype=self.dtype, name="project")(
            z_BxZ
        )
        x = act(_norm(self.norm, train, "norm_project")(x.reshape(-1, h0, w0, widths[0])))
        for i, width in enumerate((*widths[1:], c)):
            last = i == len(widths) - 1
            bias = last or self.norm == "none"
            he = nn.initializers.he_normal()
            deconv = convs.ConvTranspose(width, 4, 2, use_bias=bias, impl=self.impl, kernel_init=he,
                                         dtype=self.dtype, name=f"deconv_{i}")  # fmt: skip
            x = deconv(x)
            if not last:
                x = act(_norm(self.norm, train, f"norm_{i}")(x))
        return x.astype(jnp.float32) if self.dtype is not None else x


class ConvAutoencoderNet(nn.Module):
    """AutoencoderNet's interface (encode -> (mean, log-variance | None), decode -> logits) with a
    convolutional encoder and a transposed-convolutional decoder."""

    channels: Sequence[int]
    latent_dim: int
    shape: Sequence[int]
    activation: str = "relu"
    variational: bool = False
    norm: str = "none"
    impl: str = "auto"
    dtype: Any = None

    def setup(self):
        code = 2 * self.latent_dim if self.variational else self.latent_dim
        self.encoder = ConvEncoder(
            self.channels, code, self.activation, self.norm, self.impl, dtype=self.dtype
        )
        self.decoder = ConvDecoder(
            self.channels, self.shape, self.activation, self.norm, self.impl, self.dtype
        )

    def encode(self, x_BxD: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array | None]:
        h = self.encoder(x_BxD, train)
        if self.variational:
            return h[:, : self.latent_dim], h[:, self.latent_dim :]
        return h, None

    def decode(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        return self.decoder(z_BxZ, train)

    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        return self.decode(self.encode(x_BxD, train)[0], train)


class DCGANGenerator(nn.Module):
    """DCGAN's generator (Radford et al. 2016): z -> dense (H / 2^stages)^2 x channels[-1] (4x4 x 1024 for
    their 64x64x3 with channels=128,256,512,1024) -> BatchNorm, ReLU -> 4x4 stride-2 transposed
    convolutions (BatchNorm, ReLU between) -> C maps -> sigmoid pixels [B, H, W, C]."""

    channels: Sequence[int]
    shape: Sequence[int]
    norm: str = "batch"
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        net = ConvDecoder(self.channels, self.shape, "relu", self.norm, self.impl, self.dtype, name="net")
        x = net(z_BxZ, train)
        return jax.nn.sigmoid(x)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator: 4x4 stride-2 convolutions of `channels` with LeakyReLU (no normalisation:
    see jaxgen.tasks.gan), one logit per row; `pack` samples per row ([B, pack, H, W, C]) enter as
    channels."""

    channels: Sequence[int]
    activation: str = "leaky_relu:0.2"
    pack: int = 1
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activations.get(self.activation)
        x = _image(x)
        for i, width in enumerate(self.channels):
            x = act(convs.Conv(width, 4, strides=2, impl=self.impl, dtype=self.dtype, name=f"conv_{i}")(x))
        out = nn.Dense(1, dtype=self.dtype, name="out")(x.reshape(x.shape[0], -1))
        return out.astype(jnp.float32)[:, 0]
