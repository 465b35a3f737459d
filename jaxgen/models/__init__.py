"""Flax linen modules, used purely (`params = model.init(key, x)`, `model.apply(params, x)`), and the
registry: the one place an architecture name (`--set arch=`) is read.

Each (role, arch) has one builder, called by keyword with its architecture's own block of config keys
(`cfg.ARCHS[arch].keys`) and the role's shared keywords; a third architecture is one module of networks and
one `@register` per role, and every task, figure and benchmark picks it up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxgen.errors import UserError
from jaxgen.models.conv import (
    NORMS,
    ConvAutoencoderNet,
    ConvDecoder,
    ConvEncoder,
    ConvNet,
    DCGANDiscriminator,
    DCGANGenerator,
)
from jaxgen.models.dense import MLP, AutoencoderNet, Discriminator, Generator, compute_dtype, param_count

__all__ = [
    "MLP", "NORMS", "AutoencoderNet", "ConvAutoencoderNet", "ConvDecoder", "ConvEncoder", "ConvNet",
    "DCGANDiscriminator", "DCGANGenerator", "Discriminator", "Generator", "REGISTRY", "autoencoder_net",
    "classifier_net", "compute_dtype", "gan_nets", "param_count", "register",
]  # fmt: skip

REGISTRY: dict[tuple[str, str], Callable[..., Any]] = {}  # (role, arch) -> builder


def register(role: str, arch: str) -> Callable:
    """Decorator: the builder of `role` ("classifier", "autoencoder", "gan") for architecture `arch`."""

    def add(builder: Callable) -> Callable:
        REGISTRY[(role, arch)] = builder
        return builder

    return add


def build(role: str, cfg: Any, **shared: Any) -> Any:
    """The network(s) of `role` for cfg's architecture, from its own block of keys and `shared`."""
    builder = REGISTRY.get((role, cfg.arch))
    if builder is None:
        archs = sorted(a for r, a in REGISTRY if r == role)
        raise UserError(f"arch={cfg.arch} has no {role} network: choose one of {', '.join(archs)}")
    block = {k: getattr(cfg, k) for k in cfg.arch_spec.keys}
    return builder(**block, **shared, dtype=compute_dtype(cfg.dtype))


def classifier_net(cfg: Any, num_outputs: int) -> nn.Module:
    """The classifier network a task config names."""
    return build("classifier", cfg, num_outputs=num_outputs, activation=cfg.activation, dropout=cfg.dropout)


def autoencoder_net(cfg: Any, shape: tuple[int, ...]) -> nn.Module:
    """The autoencoder (VAE when cfg.variational) a task config names, for images of `shape` (H, W, C)."""
    return build("autoencoder", cfg, latent_dim=cfg.latent_dim, activation=cfg.activation,
                 variational=cfg.variational, shape=tuple(shape))  # fmt: skip


def gan_nets(cfg: Any, shape: tuple[int, ...], images: bool, data_std: float) -> tuple[nn.Module, nn.Module]:
    """(G, D) a GAN config names, for samples of `shape` ((H, W, C) images: pixels in [0, 1]; (D,) toys)."""
    return build("gan", cfg, shape=tuple(shape), images=images, data_std=data_std, activation=cfg.activation,
                 pack=cfg.pack)  # fmt: skip


# ---------------------------------------------------------------- the builders


@register("classifier", "mlp")
def _mlp_classifier(*, hidden, init, num_outputs, activation, dropout, dtype):
    return MLP(hidden, num_outputs, activation, init, dropout, dtype)


@register("classifier", "conv")
def _cnn(*, channels, norm, conv_impl, head, num_outputs, activation, dropout, dtype):
    return ConvNet(channels, head, num_outputs, activation, norm, dropout, conv_impl, dtype)


@register("autoencoder", "mlp")
def _mlp_autoencoder(*, hidden, init, dropout, latent_dim, activation, variational, shape, dtype):
    return AutoencoderNet(hidden, latent_dim, activation, init, variational, dropout, shape, dtype=dtype)


@register("autoencoder", "conv")
def _conv_autoencoder(*, channels, norm, conv_impl, latent_dim, activation, variational, shape, dtype):
    return ConvAutoencoderNet(channels, latent_dim, shape, activation, variational, norm, conv_impl, dtype)


@register("gan", "mlp")
def _mlp_gan(*, hidden, d_hidden, standardize, shape, images, data_std, activation, pack, dtype):
    """The MLP pair; with `standardize`, both work at the data's scale of one (toys: biases need not travel
    to |x| = 4 at lr 2e-4 per step)."""
    del pack  # D's input is `pack` samples side by side: its first Dense takes the width from the data
    scale = data_std if standardize and not images else 1.0
    g = Generator(hidden, shape, activation, "sigmoid" if images else "linear", scale, dtype)
    return g, Discriminator(d_hidden, activation, scale, dtype)


@register("gan", "conv")
def _dcgan(*, channels, d_channels, norm, conv_impl, shape, images, data_std, activation, pack, dtype):
    """DCGAN (Radford et al. 2016; departures: docs/conv.md): G's ReLUs are DCGAN's, D takes `activation`."""
    del images, data_std  # images (the config refuses toys for arch=conv)
    return (DCGANGenerator(channels, shape, norm, conv_impl, dtype),
            DCGANDiscriminator(d_channels, activation, pack, conv_impl, dtype))  # fmt: skip
