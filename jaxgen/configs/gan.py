"""`jaxgen train gan`: the GAN's config (MLP GAN and DCGAN) and its defaults for the data (no JAX here).

How each default was chosen (the tuning sessions, their numbers): docs/defaults.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from jaxgen.config import Arch, NetConfig, most_stages, require_stages
from jaxgen.configs.table import IMAGE_SIZE, Default, Rule, same_as
from jaxgen.errors import UserError

# the games (jaxgen.tasks.gan_losses.LOSSES has one function per name; tests/test_gan_losses.py: same names)
LOSSES = ("nonsaturating", "saturating", "hinge", "wgan-gp")
DIFFAUG_SIZES = {"translate": 4, "cutout": 14}  # DiffAugment's for 28x28: 1/8 and 1/2 of the side


def dcgan_d_channels(channels: tuple[int, ...]) -> tuple[int, ...]:
    """DCGAN's D widths by default: G's `channels` and one stride-2 stage more, twice as wide (32, 64 ->
    32, 64, 128: 28 -> 14 -> 7 -> 4)."""
    return (*channels, 2 * channels[-1])


def radford_channels(c: dict[str, Any], ds: Any) -> tuple[int, ...]:
    """G's widths in Radford et al.'s DCGAN layout: stride-2 stages from a 4x4 grid up to the image size,
    doubling in width towards that grid, from 32 maps at the last stage (32x32: 32,64,128; 64x64:
    32,64,128,256; their published 64x64 widths, 128,256,512,1024, are one --set away)."""
    stages = max(1, (int(c["image_size"]) // 4).bit_length() - 1)
    return tuple(32 << i for i in range(stages))


def _data_dim(c: dict[str, Any], ds: Any) -> int:
    return int(ds.info["dim"])


DEFAULTS: tuple[Default, ...] = (
    *IMAGE_SIZE,
    Default("*", "*", {"steps": 10000, "batch_size": 256, "latent_dim": 16, "lr": 1e-3, "d_lr": same_as("lr"),
            "pack": 1, "r1": 10.0, "ema": 0.999, "d_hidden": same_as("hidden")},
            "MNIST in 5 CPU minutes; lr 2e-4 gave judge confidence 0.88 against 1e-3's 0.92; R1 10; EMA of G",
            "docs/defaults.md#gan-mlp-on-images"),
    Default("*", "*", {"gp": 10.0}, "WGAN-GP's penalty weight (Gulrajani et al. 2017); loss=wgan-gp only",
            "docs/defaults.md#gan-losses"),
    Default("toy", "*", {"latent_dim": Rule("the data's dimension", _data_dim), "lr": 2e-4, "pack": 2,
            "r1": 0.0}, "a latent as wide as the data, PacGAN pairs against dropped modes, low noise",
            "docs/defaults.md#gan-on-the-toys"),
    Default("toy:ring8", "*", {"steps": 20000}, "long, low-noise training places samples within 3 std",
            "docs/results.md#gan-jaxgen-train-gan"),
    Default("toy:grid25", "*", {"steps": 60000, "r1": 0.3}, "R1 0.3 pulls mass off the bridges between"
            " modes (hq 0.53-0.70 without, 0.76-0.77 with)", "docs/results.md#gan-jaxgen-train-gan"),
    Default("toy:gauss1d", "*", {"steps": 10000}, "the 1-D game against the optimal D*",
            "docs/results.md#gan-jaxgen-train-gan"),
    Default("*", "conv", {"channels": (32, 64), "steps": 12000, "batch_size": 64, "lr": 1e-3, "d_lr": 4e-3,
            "r1": 1.0, "ema": 0.0, "d_channels": Rule("channels + one stage 2x wider",
                               lambda c, ds: dcgan_d_channels(c["channels"]))},
            "DCGAN: batch 64, D 4x G's lr (TTUR), D one stage deeper, R1 1, no EMA; 12,000 steps ~11.5 min",
            "docs/defaults.md#dcgan"),
    Default("colour", "conv", {"channels": Rule("from 4x4 to the image, 32 maps last", radford_channels),
            "d_channels": same_as("channels"), "steps": 5000, "lr": 2e-4, "d_lr": 8e-4},
            "Radford's layout, lr 2e-4 (D 4x: judge Frechet 38.3 at 1,500 steps, 46.9 at D 2e-4; D 4e-3 blew"
            " up at step 600); 5,000 steps ~22 min (2-core CPU, 32x32)",
            "docs/colour.md#dcgan-on-colour-images"),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class GANConfig(NetConfig):
    """GAN (2014): generator and discriminator, MLPs (arch=mlp) or DCGAN (arch=conv), alternating updates."""

    steps: int | None = None  # generator steps (each after d_steps D steps)
    batch_size: int | None = None  # real examples per D update, fakes per G update
    lr: float | None = None  # generator peak learning rate (cosine decay)
    hidden: tuple[int, ...] = (256, 256, 256)  # arch=mlp: generator widths
    activation: str = "leaky_relu:0.2"  # hidden activation of D (and of G for arch=mlp; DCGAN's G: relu)
    latent_dim: int | None = None  # size of the noise z ~ N(0, I)
    d_hidden: tuple[int, ...] | None = None  # arch=mlp: discriminator widths
    d_lr: float | None = None  # discriminator peak learning rate
    loss: str = "nonsaturating"  # the game: nonsaturating (G: -log D(G(z))), saturating, hinge, wgan-gp
    gp: float | None = None  # loss=wgan-gp: D loss += gp E(||grad D(x^)||-1)^2 at x^ between real and fake
    d_steps: int = 1  # discriminator updates per generator update, each on its own real batch
    beta1: float = 0.5  # Adam's first-moment decay for both players (0.5: the DCGAN choice, less momentum)
    decay: bool = True  # cosine decay of both learning rates to zero over `steps` (sharpens the samples)
    pack: int | None = None  # PacGAN: D judges `pack` samples concatenated (against mode dropping)
    r1: float | None = None  # R1 weight g: D loss += g/2 E||grad_x D(x)||^2 on real rows; 0 = off
    ema: float | None = None  # decay of an EMA of G's weights (what sample/evaluate use); 0 = off
    standardize: bool = False  # arch=mlp, toys: D sees x / std(data), G outputs std(data) * MLP(z)
    topk: float = 1.0  # top-k: G learns from this share of its samples D rates best (1 = all), by the end
    channels: tuple[int, ...] | None = None  # arch=conv: G's maps per stride-2 stage (last: the first grid)
    d_channels: tuple[int, ...] | None = None  # arch=conv: D's stride-2 maps
    norm: str = "batch"  # arch=conv: G's normalisation, batch (BatchNorm, DCGAN) or none; D has none
    best_metric: str = "val/hq_fraction:max"  # ranks checkpoints; toys: near a mode (images: D's means only)
    diffaug: str = "none"  # images: what D sees of real and fake alike, e.g. translate:2,cutout:8 (or none)

    TASK: ClassVar[str] = "gan"
    DEFAULTS: ClassVar[tuple[Default, ...]] = DEFAULTS
    ARCHS: ClassVar[dict[str, Arch]] = {
        "mlp": Arch(("hidden", "d_hidden", "standardize"), label="MLP"),
        "conv": Arch(("channels", "d_channels", "norm", "conv_impl"), images_only=True, label="DCGAN"),
    }
    TINY: ClassVar[dict[str, Any]] = {"hidden": (16,), "latent_dim": 2, "batch_size": 32, "r1": 0.5}
    TINY_DATA: ClassVar[str] = "toy:ring8"
    # the tests' tiny DCGAN keeps a two-stage D (it compiles in ~2/3 of the time; the default's third stage
    # trains in tests/test_convs.py::test_conv_loss_falls_on_one_batch)
    TINY_CONV: ClassVar[dict[str, Any]] = {
        "channels": (4, 8), "d_channels": (4, 8), "latent_dim": 4, "batch_size": 16, "r1": 0.5,
    }  # fmt: skip

    def applies(self, key: str) -> bool:
        """gp is read by loss=wgan-gp only: another loss's record holds none (unless set, to 0)."""
        if key == "gp":
            return self.loss == "wgan-gp" or self.gp is not None
        return super().applies(key)

    def check(self) -> None:
        super().check()
        if self.latent_dim is not None and not 1 <= self.latent_dim <= 1024:
            raise UserError(f"latent_dim must be in [1, 1024], got {self.latent_dim}")
        if self.d_hidden is not None and (not self.d_hidden or any(h <= 0 for h in self.d_hidden)):
            raise UserError(f"d_hidden must be a comma list of positive widths, got {self.d_hidden}")
        d = self.d_channels
        if d is not None and (not 1 <= len(d) <= 8 or any(c <= 0 for c in d)):
            raise UserError(f"d_channels must be 1 to 8 positive widths, got {d}")
        if self.d_lr is not None and not self.d_lr > 0:
            raise UserError(f"d_lr must be > 0, got {self.d_lr}")
        if self.loss not in LOSSES:
            raise UserError(
                f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}: --set loss={LOSSES[0]}"
            )
        if self.gp is not None and not self.gp >= 0:
            raise UserError(f"gp must be >= 0 (0: no gradient penalty), got {self.gp}")
        if self.gp and self.loss != "wgan-gp":
            raise UserError(
                f"gp (the gradient penalty) is loss=wgan-gp's, this run's loss is {self.loss}:"
                " drop --set gp, or add --set loss=wgan-gp"
            )
        if not 1 <= self.d_steps <= 100:
            raise UserError(
                f"d_steps must be in [1, 100] discriminator updates per generator update, got {self.d_steps}:"
                " --set d_steps=1"
            )
        if not 0 <= self.beta1 < 1:
            raise UserError(f"beta1 must be in [0, 1), got {self.beta1}")
        if self.pack is not None and not 1 <= self.pack <= 16:
            raise UserError(f"pack must be in [1, 16] samples per D row, got {self.pack}")
        if self.pack and self.batch_size and self.batch_size % self.pack:
            raise UserError(
                f"batch_size {self.batch_size} must be a multiple of pack {self.pack}: change one"
            )
        if self.r1 is not None and not self.r1 >= 0:
            raise UserError(f"r1 must be >= 0 (0: off), got {self.r1}")
        if not 0 < self.topk <= 1:
            raise UserError(f"topk must be in (0, 1] (the share of samples G learns from), got {self.topk}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise UserError(f"ema must be in [0, 1) (0: off), got {self.ema}")
        diffaug_ops(self.diffaug)

    def val_scores(self, ds: Any) -> tuple[str, ...]:
        """What GAN.evaluate gives: D's (a critic's) mean on real and fake; on toys, mode coverage."""
        reading = "d" if self.loss in ("nonsaturating", "saturating") else "critic"
        toy = ("modes_covered", "hq_fraction") if ds.kind == "toy" else ()
        return (f"{reading}_real_mean", f"{reading}_fake_mean", *toy)

    def check_data(self, ds: Any) -> None:
        """What only the data can tell: DiffAugment needs images; G's stages must reach the image size."""
        if ds.kind == "toy" and diffaug_ops(self.diffaug):
            raise UserError(f"diffaug moves image pixels; {ds.spec!r} is toy points: use --set diffaug=none")
        if ds.kind == "image" and self.applies("channels"):
            side = self.image_size or int(ds.shape[0])
            require_stages("gan", "channels", self.channels, side)
            if 1 << len(self.d_channels) > side:
                raise UserError(
                    f"d_channels has {len(self.d_channels)} stride-2 stages, more than {side}x{side} images"
                    f" can be halved: give d_channels at most {most_stages(side) + 1} widths"
                )


def diffaug_ops(text: str) -> tuple[tuple[str, int], ...]:
    """'translate:2,cutout:8' -> (("translate", 2), ("cutout", 8)); a bare name takes DIFFAUG_SIZES'."""
    if text in ("none", ""):
        return ()
    ops = []
    for item in text.split(","):
        name, _, size = item.strip().partition(":")
        if name not in DIFFAUG_SIZES or (size and not (size.isdigit() and 0 < int(size) <= 14)):
            raise UserError(
                f"diffaug must be none or a comma list of translate[:PIXELS] and cutout[:SIDE] (1-14), got"
                f" {text!r}: --set diffaug=translate:2,cutout:8"
            )
        ops.append((name, int(size) if size else DIFFAUG_SIZES[name]))
    return tuple(ops)
