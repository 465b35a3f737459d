"""`jaxgen train mlp`: the classifier's config and its defaults for the data (no JAX here)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from jaxgen.config import Arch, AugmentConfig, unit_interval, with_keys
from jaxgen.configs.table import DIGITS, IMAGE_SIZE, OTHER_IMAGES, PAIRED_INIT, Default, Rule, epochs
from jaxgen.errors import UserError

TTAS = ("none", "mirror")  # test-time augmentation (MLPConfig.tta)
NO_DISTORTION = {"max_shift": 0.0, "max_rotate": 0.0, "max_scale": 0.0, "hflip": 0.0}


def _mirror_tta(c: dict[str, Any], ds: Any) -> str:
    return "mirror" if c["augment"] and c["hflip"] > 0 else "none"


# The rows behind every value a run chooses for its data (jaxgen.configs.table explains the order).
DEFAULTS: tuple[Default, ...] = (
    *IMAGE_SIZE,
    Default("*", "*", {"steps": epochs(90), "tta": "none", "warmup_steps": Rule("5% of steps",
            lambda c, ds: c["steps"] // 20), "init": PAIRED_INIT},
            "90 epochs: chosen on Fashion-MNIST's validation split; warm-up 5 %, then cosine decay",
            "docs/fashion.md#classifier-jaxgen-train-mlp---data-fashion"),
    Default("*", "conv", {"steps": epochs(20)}, "the CNN levels off by 20 epochs on the 60,000 clothes",
            "docs/conv.md#cnn-classifier-jaxgen-train-mlp---set-archconv"),
    DIGITS,
    *OTHER_IMAGES,
    Default("clothes", "*", {"max_shift": 0.0, "max_rotate": 0.0, "max_scale": 0.0, "hflip": 0.5},
            "mirrors only: shifts of 2, 1, 0 px gave 90.70, 91.82, 92.24 % on the 5,000 validation images",
            "docs/fashion.md#classifier-jaxgen-train-mlp---data-fashion"),
    Default("clothes", "conv", {"tta": Rule("mirror if trained with mirrors", _mirror_tta)},
            "p(y|x) averaged with the mirror's: 94.06 -> 94.48 % on Fashion's validation split",
            "docs/conv.md#cnn-classifier-jaxgen-train-mlp---set-archconv"),
    Default("colour", "conv", {"steps": epochs(60)}, "60 epochs: 82.8 % on the emoji's 383 validation images"
            " (79.1 % at 20)", "docs/colour.md#defaults-for-colour-images"),
    Default("embedded", "mlp", {"steps": 2000}, "the measured choice on the 4,500-image sample",
            "docs/results.md#mlp-on-mnist-jaxgen-train-mlp-default-config"),
    Default("embedded", "conv", {"steps": 6000}, "the CNN's measured choice on the sample",
            "docs/conv.md#cnn-classifier-jaxgen-train-mlp---set-archconv"),
    Default("toy", "*", {"steps": 2000, **NO_DISTORTION}, "a 2-D toy is learned in 2,000 steps; points are"
            " never distorted", "docs/usage.md#data---data"),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MLPConfig(AugmentConfig):
    """Classifier: an MLP (arch=mlp) or a CNN (arch=conv) trained with softmax cross-entropy and AdamW."""

    batch_size: int = 128
    lr: float = 1e-3
    dropout: float = 0.2  # dropout rate after each hidden layer (train only)
    weight_decay: float = 1e-4  # decoupled (AdamW)
    warmup_steps: int | None = None  # linear warm-up steps, then cosine decay to zero
    label_smoothing: float = 0.1  # target mass spread evenly over the other classes
    erase: float = 0.0  # random erasing (images): probability of one noise-filled rectangle per image
    tta: str | None = None  # test-time augmentation: none, or mirror (p(y|x) averaged with the mirror's)
    head: tuple[int, ...] = (256,)  # arch=conv: dense widths after the convolution stages
    best_metric: str = "val/accuracy:max"  # the validation score that ranks checkpoints: val/KEY:max or :min
    # arch=conv: none, chosen on Fashion-MNIST's validation split (20 epochs: BatchNorm 93.78 %, none
    # 94.06 %; and a step without it is 1.6x faster on a CPU, docs/conv.md); batch: BatchNorm
    norm: str = "none"  # arch=conv: batch (BatchNorm; running statistics in the State) or none

    TASK: ClassVar[str] = "mlp"
    DEFAULTS: ClassVar[tuple[Default, ...]] = DEFAULTS
    ARCHS: ClassVar[dict[str, Arch]] = with_keys(AugmentConfig.ARCHS, conv=("head",))
    TINY: ClassVar[dict[str, Any]] = {"hidden": (32, 16), "batch_size": 32, "warmup_steps": 2}
    TINY_CONV: ClassVar[dict[str, Any]] = {
        "channels": (4, 8),
        "head": (16,),
        "batch_size": 16,
        "warmup_steps": 2,
    }

    @property
    def warmup(self) -> int:
        """Warm-up steps in effect (a resolved config's warmup_steps)."""
        return self.warmup_steps if self.warmup_steps is not None else (self.steps or 0) // 20

    def check(self) -> None:
        super().check()
        unit_interval(self, "dropout", "label_smoothing", "erase")
        if self.weight_decay < 0:
            raise UserError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.tta is not None and self.tta not in TTAS:
            raise UserError(f"tta must be one of {', '.join(TTAS)}, got {self.tta!r}")
        if any(h <= 0 for h in self.head):
            raise UserError(f"head must be a comma list of positive widths (or empty), got {self.head}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps < (self.steps or 2**31):
            raise UserError(f"warmup_steps must be in [0, {self.steps}), got {self.warmup_steps}")

    def val_scores(self, ds: Any) -> tuple[str, ...]:
        """What Classifier.evaluate gives."""
        return ("accuracy", "balanced_accuracy", "loss")

    def check_data(self, ds: Any) -> None:
        """What only the data can tell: a mirror needs images; warm-up below the steps chosen for it."""
        if self.tta == "mirror" and ds.kind != "image":
            raise UserError(f"tta=mirror mirrors images; {ds.spec!r} is toy points: use --set tta=none")
        if self.warmup_steps >= self.steps:
            raise UserError(
                f"warmup_steps {self.warmup_steps} must be below the {self.steps} steps chosen for {ds.spec}:"
                " lower --set warmup_steps or set --set steps"
            )
