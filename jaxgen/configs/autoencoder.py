"""`jaxgen train ae`: the autoencoder's (and VAE's) config and its defaults for the data (no JAX here)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from jaxgen.config import Arch, AugmentConfig, require_stages, unit_interval
from jaxgen.configs.table import DIGITS, IMAGE_SIZE, OTHER_IMAGES, PAIRED_INIT, Default, epochs
from jaxgen.errors import UserError

DEFAULTS: tuple[Default, ...] = (
    *IMAGE_SIZE,
    Default("*", "*", {"steps": epochs(20), "init": PAIRED_INIT}, "20 epochs of the training split",
            "docs/fashion.md#autoencoder-and-vae-jaxgen-train-ae---data-fashion"),
    DIGITS,
    *OTHER_IMAGES,
    Default("clothes", "*", {"max_shift": 2.0, "max_rotate": 0.0, "max_scale": 0.0, "hflip": 0.5},
            "garments are centred and upright: mirrors and small shifts only",
            "docs/fashion.md#autoencoder-and-vae-jaxgen-train-ae---data-fashion"),
    Default("colour", "conv", {"steps": epochs(80)}, "80 epochs: conv VAE val MSE 0.0176 (PCA-32 0.0166);"
            " wider 32,64,128 0.0183, beta 0.5 0.0186 at 60", "docs/colour.md#defaults-for-colour-images"),
    Default("embedded", "*", {"steps": 10000}, "the measured choice on the 4,500-image sample",
            "docs/results.md#autoencoder-and-vae-on-mnist-jaxgen-train-ae"),
)  # fmt: skip


# Named sets of values under what the user sets (config.make expands them; the record keeps both).
PRESETS: dict[str, dict[str, Any]] = {
    # Burda, Grosse and Salakhutdinov 2016, section 5 and appendix: one stochastic layer of 50 units, two
    # deterministic tanh layers of 200 each way, Glorot init, Adam (0.9, 0.999, eps 1e-4), batch 20, lr
    # 1e-3 * 10^(-i/7) for 3^i passes (i = 0..7, 3,280 epochs), dynamically binarised training images,
    # k = 50 importance samples (iw_k=1: their VAE). steps is left to the user: 3,280 epochs of 60,000 at
    # batch 20 are 9.84 M steps; `schedule=burda` compresses the 8 stages into whatever steps are given.
    "iwae": {
        "arch": "mlp", "hidden": (200, 200), "latent_dim": 50, "activation": "tanh", "init": "glorot_uniform",
        "variational": True, "iw_k": 50, "binarize": "dynamic", "augment": False, "batch_size": 20,
        "lr": 1e-3, "adam_eps": 1e-4, "weight_decay": 0.0, "schedule": "burda",
    },
}  # fmt: skip
BINARIZE = ("none", "dynamic")
SCHEDULES = ("cosine", "burda")


@dataclasses.dataclass(frozen=True)
class AEConfig(AugmentConfig):
    """Autoencoder (VAE: variational): image -> hidden -> latent_dim -> mirrored decoder -> image logits."""

    batch_size: int = 128
    lr: float = 2e-3
    ckpt_every: int = 2000
    hidden: tuple[int, ...] = (512, 256)  # arch=mlp: encoder widths; the decoder mirrors them
    latent_dim: int = 32  # size of the code z
    loss: str = "bce"  # bce: per-pixel sigmoid cross-entropy of logits; mse: squared error of sigmoid
    noise: float = 0.0  # denoising: std of Gaussian noise added to the (augmented) input, target clean
    variational: bool = False  # VAE: encoder gives mean and log-variance, z by reparameterisation
    beta: float = 1.0  # VAE: weight of KL(q(z|x) || N(0, I)) per image (beta-VAE when != 1)
    weight_decay: float = 1e-4  # decoupled (AdamW); cosine decay of lr to zero over steps
    dropout: float = 0.0  # arch=mlp: dropout rate after each hidden layer of encoder and decoder (train only)
    mixture: int = 10  # components of the Gaussian mixture fitted to training codes (plain AE sampling)
    norm: str = "none"  # arch=conv: batch (BatchNorm after every inner convolution) or none
    iw_k: int = 1  # VAE: samples per image in the importance-weighted objective (IWAE); 1 = the ELBO
    binarize: str = "none"  # dynamic: a fresh Bernoulli draw of every training pixel per step, test fixed
    schedule: str = "cosine"  # lr: cosine decay to zero over steps; burda: x10^(-1/7) at 3^i-epoch stages
    adam_eps: float = 1e-8  # Adam's epsilon (the IWAE paper: 1e-4)
    best_metric: str = "val/recon_bce:min"  # the validation score ranking checkpoints (a VAE: val/elbo:max)
    preset: str = "none"  # iwae: Burda et al.'s 1-layer MNIST VAE (784-200-200-50, tanh, Adam, binarised)

    TASK: ClassVar[str] = "ae"
    DEFAULTS: ClassVar[tuple[Default, ...]] = DEFAULTS
    ARCHS: ClassVar[dict[str, Arch]] = {
        "mlp": Arch(("hidden", "init", "dropout")),
        "conv": Arch(("channels", "norm", "conv_impl"), images_only=True, label="conv"),
    }
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    TINY: ClassVar[dict[str, Any]] = {"hidden": (32,), "latent_dim": 4, "batch_size": 32}
    TINY_CONV: ClassVar[dict[str, Any]] = {"channels": (4, 8), "latent_dim": 4, "batch_size": 16}

    def check(self) -> None:
        super().check()
        if not 1 <= self.latent_dim <= 4096:
            raise UserError(f"latent_dim must be in [1, 4096], got {self.latent_dim}")
        if self.loss not in ("bce", "mse"):
            raise UserError(f"loss must be bce or mse, got {self.loss!r}")
        if self.variational and self.loss != "bce":
            raise UserError("variational=true needs loss=bce (the ELBO's likelihood): drop loss=mse")
        if not 0 <= self.noise <= 1:
            raise UserError(f"noise must be in [0, 1] (std of the input noise), got {self.noise}")
        if not self.beta >= 0:
            raise UserError(f"beta must be >= 0, got {self.beta}")
        unit_interval(self, "dropout")
        if self.weight_decay < 0:
            raise UserError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 1 <= self.iw_k <= 5000:
            raise UserError(f"iw_k must be in [1, 5000] importance samples per image, got {self.iw_k}")
        if self.iw_k > 1 and not (self.variational and self.beta == 1.0):
            raise UserError("iw_k > 1 is the IWAE bound of a VAE: add --set variational=true (and beta=1)")
        for key, allowed in (("binarize", BINARIZE), ("schedule", SCHEDULES), ("preset", ("none", *PRESETS))):
            if getattr(self, key) not in allowed:
                raise UserError(f"{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if not 0 < self.adam_eps < 1:
            raise UserError(f"adam_eps must be in (0, 1), got {self.adam_eps}")
        if not 1 <= self.mixture <= 100:
            raise UserError(f"mixture must be in [1, 100] components, got {self.mixture}")

    def require_images(self, ds: Any) -> None:
        """Every architecture of the AE needs images: refused before anything is filled for the data."""
        if ds.kind != "image":
            raise UserError(
                f"ae trains on images; {ds.spec!r} is a toy set (use embedded, idx:PATH or tfds:NAME)"
            )

    def val_scores(self, ds: Any) -> tuple[str, ...]:
        """What Autoencoder.evaluate gives (the pca_ scores are the PCA baseline's)."""
        vae = ("kl", "elbo", "elbo_bits_per_dim") if self.variational else ()
        return ("recon_bce", "recon_mse", "latent_knn_accuracy", "sharpness_ratio", *vae)

    def check_data(self, ds: Any) -> None:
        """A code no wider than the image; the conv decoder's stages must double back to the image size."""
        dim = int(np.prod(ds.shape))
        if self.latent_dim > dim:
            raise UserError(
                f"latent_dim {self.latent_dim} is wider than an image of {ds.spec} ({dim} numbers):"
                f" --set latent_dim={min(32, dim)}"
            )
        if self.applies("channels"):
            require_stages("ae", "channels", self.channels, self.image_size or int(ds.shape[0]))
