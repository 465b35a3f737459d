"""Flax linen modules, used purely: `params = model.init(key, x)`, `model.apply(params, x)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import activations, convs


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
        """Logits; with features=True, (logits, last hidden layer's activations)."""
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
    """Encoder 784 -> hidden -> latent (VAE: mean and log-variance), mirrored decoder -> 784 logits."""

    hidden: Sequence[int]
    latent_dim: int
    activation: str = "relu"
    kernel_init: str = "auto"
    variational: bool = False
    dropout: float = 0.0
    out_dim: int = 784
    dtype: Any = None  # compute dtype (None: float32)

    def setup(self):
        code = 2 * self.latent_dim if self.variational else self.latent_dim
        self.encoder = MLP(self.hidden, code, self.activation, self.kernel_init, self.dropout, self.dtype)
        widths = tuple(reversed(self.hidden))
        self.decoder = MLP(widths, self.out_dim, self.activation, self.kernel_init, self.dropout, self.dtype)

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
    dtype: Any = None  # compute dtype (None: float32)

    @nn.compact
    def __call__(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        x = MLP(self.hidden, self.out_dim, self.activation, dtype=self.dtype, name="mlp")(z_BxZ)
        return jax.nn.sigmoid(x) if self.output == "sigmoid" else self.scale * x


class Discriminator(nn.Module):
    """x -> MLP -> one logit per row (a row is `pack` samples concatenated under PacGAN)."""

    hidden: Sequence[int]
    activation: str = "leaky_relu:0.2"
    scale: float = 1.0  # inputs are divided by it (the data's scale: the MLP sees order-1 inputs)
    dtype: Any = None  # compute dtype (None: float32)

    @nn.compact
    def __call__(self, x_BxD: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1, self.activation, dtype=self.dtype, name="mlp")(x_BxD / self.scale)[:, 0]


# ---------------------------------------------------------------- convolutional networks (arch=conv)
#
# Images arrive flat ([B, 784] in [0, 1]) as for the MLPs and are viewed as [B, 28, 28, 1] inside; every
# convolution is jaxgen.convs' (nn.Conv's parameters; shifted slices and one matrix product on the CPU,
# XLA's convolution elsewhere: `impl`). BatchNorm (`norm="batch"`) keeps its running mean and variance
# in the "batch_stats" collection, beside "params" in the variables a task keeps in its State.

SIDE = 28  # image side: 28 x 28 x 1
NORMS = ("batch", "none")


def _norm(norm: str, train: bool, name: str):
    """The normalisation after a convolution: BatchNorm (running statistics when not training) or none."""
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)
    return lambda x: x


def _image(x_BxD: jax.Array, channels: int = 1) -> jax.Array:
    """Flat rows [B, channels * 784] as [B, 28, 28, channels] (PacGAN packs samples as channels)."""
    b = x_BxD.shape[0]
    return x_BxD.reshape(b, channels, SIDE, SIDE).transpose(0, 2, 3, 1)


class ConvNet(nn.Module):
    """CNN classifier: per stage a 3x3 convolution of `channels[i]` maps, (BatchNorm), the activation and
    2x2 max pooling (28 -> 14 -> 7 -> 3); then dense layers of `head` widths with dropout; linear logits."""

    channels: Sequence[int]
    head: Sequence[int]
    num_outputs: int
    activation: str = "relu"
    norm: str = "batch"
    dropout: float = 0.0
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, x_BxD: jax.Array, *, train: bool = False, features: bool = False):
        act = activations.get(self.activation)
        he = nn.initializers.he_normal()
        x = _image(x_BxD)
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


def conv_stages_ok(channels: Sequence[int]) -> bool:
    """Whether stride-2 stages of `channels` take 28 x 28 to a grid that doubling returns to 28 (1 or 2)."""
    return 1 <= len(channels) <= 2


class ConvEncoder(nn.Module):
    """28 x 28 x 1 -> stride-2 3x3 convolutions of `channels` (28 -> 14 -> 7) -> dense `outputs`."""

    channels: Sequence[int]
    outputs: int
    activation: str = "relu"
    norm: str = "none"
    impl: str = "auto"
    in_channels: int = 1
    dtype: Any = None

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        x = _image(x_BxD, self.in_channels)
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
    """z -> dense to a (28 / 2^stages)^2 x channels[-1] grid -> stride-2 4x4 transposed convolutions of the
    reversed `channels` (ending in one map) -> [B, 784] linear outputs (pixel logits)."""

    channels: Sequence[int]
    activation: str = "relu"
    norm: str = "none"
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        side = SIDE >> len(self.channels)
        widths = tuple(reversed(self.channels))
        x = nn.Dense(side * side * widths[0], use_bias=self.norm == "none", dtype=self.dtype, name="project")(
            z_BxZ
        )
        x = act(_norm(self.norm, train, "norm_project")(x.reshape(-1, side, side, widths[0])))
        for i, width in enumerate((*widths[1:], 1)):
            last = i == len(widths) - 1
            bias = last or self.norm == "none"
            he = nn.initializers.he_normal()
            deconv = convs.ConvTranspose(width, 4, 2, use_bias=bias, impl=self.impl, kernel_init=he,
                                         dtype=self.dtype, name=f"deconv_{i}")  # fmt: skip
            x = deconv(x)
            if not last:
                x = act(_norm(self.norm, train, f"norm_{i}")(x))
        x = x.reshape(x.shape[0], -1)
        return x.astype(jnp.float32) if self.dtype is not None else x


class ConvAutoencoderNet(nn.Module):
    """AutoencoderNet's interface (encode -> (mean, log-variance | None), decode -> logits) with a
    convolutional encoder and a transposed-convolutional decoder."""

    channels: Sequence[int]
    latent_dim: int
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
        self.decoder = ConvDecoder(self.channels, self.activation, self.norm, self.impl, self.dtype)

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
    """DCGAN's generator for 28 x 28 (Radford et al. 2016): z -> dense 7x7 x channels[-1] -> BatchNorm,
    ReLU -> 4x4 stride-2 transposed convolutions (BatchNorm, ReLU between) -> one map -> sigmoid pixels."""

    channels: Sequence[int]
    norm: str = "batch"
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, z_BxZ: jax.Array, train: bool = False) -> jax.Array:
        x = ConvDecoder(self.channels, "relu", self.norm, self.impl, self.dtype, name="net")(z_BxZ, train)
        return jax.nn.sigmoid(x)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator for 28 x 28: 4x4 stride-2 convolutions of `channels` with LeakyReLU (no
    normalisation: see jaxgen.tasks.gan), one logit per row; `pack` samples per row enter as channels."""

    channels: Sequence[int]
    activation: str = "leaky_relu:0.2"
    pack: int = 1
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, x_BxD: jax.Array) -> jax.Array:
        act = activations.get(self.activation)
        x = _image(x_BxD, self.pack)
        for i, width in enumerate(self.channels):
            x = act(convs.Conv(width, 4, strides=2, impl=self.impl, dtype=self.dtype, name=f"conv_{i}")(x))
        out = nn.Dense(1, dtype=self.dtype, name="out")(x.reshape(x.shape[0], -1))
        return out.astype(jnp.float32)[:, 0]


# ---------------------------------------------------------------- the arch switch (`--set arch=`)


def classifier_net(cfg: Any, num_outputs: int) -> nn.Module:
    """The classifier network a task config names: ConvNet for arch=conv, else the MLP of `hidden`."""
    dtype = compute_dtype(cfg.dtype)
    if cfg.arch == "conv":
        c = cfg
        return ConvNet(c.channels, c.head, num_outputs, c.activation, c.norm, c.dropout, c.conv_impl, dtype)
    return MLP(cfg.hidden, num_outputs, cfg.activation, cfg.init, cfg.dropout, dtype)


def autoencoder_net(cfg: Any) -> nn.Module:
    """The autoencoder (VAE when cfg.variational) a task config names."""
    dtype = compute_dtype(cfg.dtype)
    if cfg.arch == "conv":
        return ConvAutoencoderNet(cfg.channels, cfg.latent_dim, cfg.activation, cfg.variational, cfg.norm,
                                  cfg.conv_impl, dtype)  # fmt: skip
    return AutoencoderNet(cfg.hidden, cfg.latent_dim, cfg.activation, cfg.init, cfg.variational, cfg.dropout,
                          dtype=dtype)  # fmt: skip


def dcgan_d_channels(channels: tuple[int, ...], d_channels: tuple[int, ...] = ()) -> tuple[int, ...]:
    """DCGAN's D widths: d_channels, or (empty) G's `channels` and one stride-2 stage more, twice as wide
    (32, 64 -> 32, 64, 128: 28 -> 14 -> 7 -> 4; docs/conv.md, session 15)."""
    return tuple(d_channels) or (*channels, 2 * channels[-1])


def gan_nets(cfg: Any, dim: int, images: bool, scale: float) -> tuple[nn.Module, nn.Module]:
    """(G, D) a GAN config names: DCGAN for arch=conv, else the MLP pair (sigmoid pixels for images)."""
    dtype = compute_dtype(cfg.dtype)
    if cfg.arch == "conv":
        d_channels = dcgan_d_channels(cfg.channels, cfg.d_channels)
        return (DCGANGenerator(cfg.channels, cfg.norm, cfg.conv_impl, dtype),
                DCGANDiscriminator(d_channels, cfg.activation, cfg.pack, cfg.conv_impl, dtype))  # fmt: skip
    g = Generator(cfg.hidden, dim, cfg.activation, "sigmoid" if images else "linear", scale, dtype)
    return g, Discriminator(cfg.d_hidden or cfg.hidden, cfg.activation, scale, dtype)
