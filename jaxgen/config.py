"""The config blocks every task shares (run, network, augmentation), and `--set key=value` parsing, JSON and
the run's record for any task's config class, rejecting mistakes before anything compiles. No JAX here.

Each task's own config class, with its table of defaults for the data, lives in jaxgen/configs/; the
functions below take the class, never a task name (the CLI resolves the name once: jaxgen.configs).

A field whose default is None is "chosen for the data": `jaxgen.configs.resolve` fills it from the task's
table, once, for a new run; the run's resolved.json then holds every value concrete (`record`), and every
later reader rebuilds the run from that record, never from today's defaults.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from typing import Any, ClassVar

from jaxgen import activation_names
from jaxgen.errors import UserError


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture of a task: the keys only it reads, and what it needs of the data."""

    keys: tuple[str, ...]  # --set keys this architecture reads and the others do not
    images_only: bool = False  # convolutions need images, not toy points
    label: str = ""  # what figure titles call it ("CNN")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What every task's run shares: the driver reads only these."""

    seed: int = 0  # the whole run is a pure function of (config, seed)
    steps: int | None = None  # total optimizer steps
    batch_size: int = 128  # global batch, split over devices
    lr: float = 1e-3  # peak learning rate
    ckpt_every: int = 1000  # checkpoint every this many steps (and at the end)
    log_every: int = 100  # steps per compiled chunk: one host sync, one metrics line per chunk
    keep: int = 3  # checkpoints kept: the newest this many (older ones deleted as new ones land)
    keep_every: int = 0  # also keep every checkpoint whose step is a multiple of this forever; 0 = none
    keep_best: int = 0  # also keep the best this many checkpoints by best_metric (needs val > 0); 0 = none
    best_metric: str = "val/loss:min"  # the validation score that ranks checkpoints: val/KEY:max or :min
    patience: int = 0  # stop after this many checkpoints without a best_metric gain (needs val > 0); 0 = off
    min_delta: float = 0.0  # patience: a gain over the best best_metric counts only when larger than this
    precision: str = "default"  # matmul precision: default (TF32 on NVIDIA GPUs), high, highest (full fp32)
    dtype: str = "float32"  # compute dtype of the dense layers: float32 or bfloat16 (weights stay float32)
    val: int = 0  # training examples held out (a fixed choice) as the validation split, scored at checkpoints
    image_size: int | None = None  # images: centre-cropped square, area-resized to this side (toys: 0)

    TASK: ClassVar[str] = ""  # the task's name in jaxgen.configs.CONFIGS (config.json's "task")
    # The tiny run that tests/test_tasks.py puts every registered task through (and the data it uses).
    TINY: ClassVar[dict[str, Any]] = {}
    TINY_DATA: ClassVar[str] = "embedded"
    ARCHS: ClassVar[dict[str, Arch]] = {}  # arch name -> its own keys (jaxgen.models builds by the name)

    def check(self) -> None:
        """Raise a UserError naming the fix for any value out of range (None: chosen for the data)."""
        _typed(self)
        positive(self, "ckpt_every", "log_every", "keep", "steps", "batch_size")
        if self.keep_every < 0:
            raise UserError(f"keep_every must be >= 0 (0 = no permanent keepers), got {self.keep_every}")
        self.check_best()
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"lr must be > 0, got {self.lr}")
        if self.val < 0:
            raise UserError(f"val must be >= 0 training examples to hold out (0 = none), got {self.val}")
        if not 0 <= self.seed < 2**31:
            raise UserError(f"seed must be in [0, 2**31), got {self.seed}")
        if self.image_size is not None and not 0 <= self.image_size <= 1024:
            raise UserError(
                f"image_size must be a side in pixels (1-1024; 0: toy points), got {self.image_size}"
            )

    def check_best(self) -> None:
        """keep_best, best_metric, patience and min_delta: in range, and scored on a validation split."""
        for key in ("keep_best", "patience"):
            if getattr(self, key) < 0:
                raise UserError(f"{key} must be >= 0 (0 = off), got {getattr(self, key)}")
            if getattr(self, key) and not self.val:
                raise UserError(
                    f"{key} ranks checkpoints by a validation score (best_metric={self.best_metric}) and"
                    f" val=0 holds no validation split out: add --set val=5000 (examples), or drop {key}"
                )
        name, _, mode = self.best_metric.rpartition(":")
        if not re.fullmatch(r"val/\w+", name) or mode not in ("max", "min"):
            raise UserError(
                f"best_metric must be val/KEY:max or val/KEY:min (a validation score and which way is"
                f" better), got {self.best_metric!r}: e.g. --set best_metric=val/loss:min"
            )
        if not self.min_delta >= 0:
            raise UserError(f"min_delta must be >= 0 (a gain in best_metric), got {self.min_delta}")

    def val_scores(self, ds: Any) -> tuple[str, ...]:
        """The scores the task's evaluation gives on `ds`'s validation split (no "val/"); () = unknown."""
        return ()

    def check_scores(self, ds: Any) -> None:
        """One line, before anything compiles, when keep_best or patience would rank checkpoints by a score
        the task's validation evaluation on `ds` does not give."""
        key, known = self.best_metric.rpartition(":")[0].removeprefix("val/"), self.val_scores(ds)
        if (self.keep_best or self.patience) and known and key not in known:
            raise UserError(
                f"best_metric={self.best_metric}: the {self.TASK} validation evaluation on {ds.spec} gives no"
                f" {key!r}; it gives {', '.join(known)}: --set best_metric=val/KEY:max (or :min)"
            )

    @property
    def arch_spec(self) -> Arch:
        """The chosen architecture's entry (keys, needs); the arch name itself is models' to read."""
        return self.ARCHS.get(getattr(self, "arch", ""), Arch(()))

    def applies(self, key: str) -> bool:
        """Whether `key` does anything under the chosen architecture (shared keys always do)."""
        return key in self.arch_spec.keys or not any(key in a.keys for a in self.ARCHS.values())

    def require_images(self, ds: Any) -> None:
        """One-line error for an architecture that needs images given toy points."""
        if self.arch_spec.images_only and ds.kind != "image":
            arch = getattr(self, "arch", "")
            raise UserError(
                f"arch={arch} convolves images; {ds.spec!r} is {ds.info.get('dim', '?')}-D toy points:"
                " use --set arch=mlp for toy data"
            )


@dataclasses.dataclass(frozen=True)
class NetConfig(TrainConfig):
    """The network block every task shares: `arch` picks the family, each family reads its own keys."""

    arch: str = "mlp"  # mlp: dense layers of `hidden`; conv: convolutions of `channels` (images only)
    activation: str = "relu"  # any name in jaxgen.activations (leaky_relu:0.1 too)
    hidden: tuple[int, ...] = (800, 800)  # arch=mlp: hidden layer widths
    channels: tuple[int, ...] = (32, 64)  # arch=conv: feature maps of each convolution stage
    norm: str = "batch"  # arch=conv: batch (BatchNorm; running statistics in the State) or none
    conv_impl: str = "auto"  # arch=conv: auto (cpu: slices, else xla), slices (shifted slices + matmul), xla

    ARCHS: ClassVar[dict[str, Arch]] = {
        "mlp": Arch(("hidden",), label="MLP"),
        "conv": Arch(("channels", "norm", "conv_impl"), images_only=True, label="CNN"),
    }

    def check(self) -> None:
        super().check()
        if self.arch not in self.ARCHS:
            raise UserError(
                f"arch must be one of {', '.join(self.ARCHS)}, got {self.arch!r}: --set arch=conv"
            )
        activation_names.validate(self.activation)
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise UserError(f"hidden must be a comma list of positive widths, got {self.hidden}")
        if self.channels is not None and (not self.channels or any(c <= 0 for c in self.channels)):
            raise UserError(f"channels must be a comma list of positive widths, got {self.channels}")
        if self.norm not in NORMS:
            raise UserError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise UserError(f"conv_impl must be one of {', '.join(CONV_IMPLS)}, got {self.conv_impl!r}")


def stages_fit(stages: int, side: int) -> bool:
    """Whether `stages` stride-2 steps halve a side exactly and doubling returns to it (28: 1 or 2; 32: up
    to 4 from a 2x2 grid; 64: up to 5)."""
    return stages >= 1 and side % (1 << stages) == 0 and side >> stages >= 2


def most_stages(side: int) -> int:
    """The most stride-2 stages that fit a side (stages_fit); 0 if none does."""
    return max((n for n in range(1, 11) if stages_fit(n, side)), default=0)


def require_stages(task: str, key: str, widths: tuple[int, ...], side: int) -> None:
    """One line when `widths` (one stride-2 stage each) cannot halve a side-pixel image and double back."""
    if not stages_fit(len(widths), side):
        most = most_stages(side)
        fix = f"give {key} at most {most} widths" if most else "use another image_size (a multiple of 4)"
        raise UserError(
            f"arch=conv {task}: {len(widths)} stride-2 stages ({key}={','.join(map(str, widths))}) cannot"
            f" halve {side}x{side} images exactly and double back to them (the side must be a multiple of"
            f" {1 << len(widths)}, the smallest grid 2x2): {fix}, or --set image_size to a multiple of"
            f" {1 << len(widths)}"
        )


def with_keys(archs: dict[str, Arch], **extra: tuple[str, ...]) -> dict[str, Arch]:
    """`archs` with more keys for some architectures (a task's own architecture keys)."""
    return {k: dataclasses.replace(a, keys=a.keys + extra.get(k, ())) for k, a in archs.items()}


@dataclasses.dataclass(frozen=True)
class AugmentConfig(NetConfig):
    """Random affine distortion of each training image, fresh every step (image tasks); dense layers'
    initialisation (arch=mlp)."""

    init: str | None = None  # arch=mlp: kernel initialiser; default: the one the activation is used with
    augment: bool = True  # random affine distortion of each training image, fresh every step (not toys)
    max_shift: float | None = None  # translation, pixels
    max_rotate: float | None = None  # rotation, degrees
    max_scale: float | None = None  # zoom range 1 +- max_scale
    hflip: float | None = None  # probability of a left-right mirror

    ARCHS: ClassVar[dict[str, Arch]] = with_keys(NetConfig.ARCHS, mlp=("init",))

    def check(self) -> None:
        super().check()
        if self.init is not None:
            activation_names.validate_init(self.init)
        limits = {"max_shift": (0, 8, "pixels"), "max_rotate": (0, 180, "degrees"), "hflip": (0, 1, "")}
        for key, (lo, hi, unit) in limits.items():
            v = getattr(self, key)
            if v is not None and not lo <= v <= hi:
                what = "a probability in [0, 1]" if key == "hflip" else f"in [{lo}, {hi}] {unit}"
                raise UserError(f"{key} must be {what}, got {v:g}")
        if self.max_scale is not None and not 0 <= self.max_scale < 1:
            raise UserError(f"max_scale must be in [0, 1), got {self.max_scale}")


# Keys that may differ when the same workdir is run again: extending a run is resuming it.
# conv_impl too: how a convolution is computed (the same numbers to float32 precision), picked per backend.
# keep_best, patience and min_delta: which checkpoints stay and when the run ends, not what it computes.
RESUMABLE_KEYS = (
    "steps", "ckpt_every", "log_every", "keep", "keep_every", "keep_best", "patience", "min_delta",
    "conv_impl",
)  # fmt: skip

NORMS = ("batch", "none")  # jaxgen.models.NORMS
CONV_IMPLS = ("auto", "slices", "xla")  # jaxgen.convs.IMPLS (kept here: config imports no JAX)
PRECISIONS = ("default", "high", "highest")  # jax.default_matmul_precision names
DTYPES = ("float32", "bfloat16")
INT_LIMIT = 2**31  # steps and counters live in int32 on the device


def _typed(cfg: Any) -> None:
    """Every field holds its declared type (a config built from JSON or Python, not only from --set):
    ints are ints below 2**31, floats are finite, bools are bools, widths are tuples of ints; None only
    where a field is chosen for the data."""
    optional = optional_fields(type(cfg))
    for name, typ in fields(type(cfg)).items():
        v = getattr(cfg, name)
        if v is None and name in optional:
            continue
        if typ is bool:
            ok = isinstance(v, bool)
        elif typ is int:
            ok = isinstance(v, int) and not isinstance(v, bool) and -INT_LIMIT < v < INT_LIMIT
        elif typ is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        elif typ is str:
            ok = isinstance(v, str)
        else:
            ok = isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        if not ok:
            raise UserError(f"{name}={v!r}: {name} must be {_KIND.get(typ, 'a comma list of integers')}")


_KIND = {
    bool: "true or false",
    int: f"an integer below 2**31 = {INT_LIMIT}",
    float: "a finite number",
    str: "a string",
}


def positive(cfg: Any, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) is not None and getattr(cfg, name) <= 0:
            raise UserError(f"{name} must be a positive integer, got {getattr(cfg, name)}")


def unit_interval(cfg: Any, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) is not None and not 0 <= getattr(cfg, name) < 1:
            raise UserError(f"{name} must be in [0, 1), got {getattr(cfg, name)}")


def _convert(key: str, raw: str, typ: Any) -> Any:
    """Parse one --set value to the field's declared type."""
    origin = typing.get_origin(typ)
    if not raw.isascii():  # int("٤٠٠") is 400 in Python: a config must read the same to every eye
        raise UserError(f"--set {key}={raw!r}: use ASCII digits and letters only")
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if origin is tuple:
            (elem, _) = typing.get_args(typ)
            parts = [p for p in raw.split(",") if p.strip()]
            try:
                return tuple(_convert(key, p.strip(), elem) for p in parts)
            except UserError:
                raise ValueError from None
        if typ is int:
            value = float(raw)  # accept 1e4 and 1000
            if not math.isfinite(value) or value != int(value) or abs(value) >= INT_LIMIT:
                raise ValueError
            return int(value)
        if typ is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        return raw
    except ValueError:
        kind = _KIND.get(typ, "a comma list of integers")
        raise UserError(f"--set {key}={raw!r}: {key} must be {kind}") from None


def field_help(cls: type[TrainConfig]) -> dict[str, str]:
    """Field name -> its one-line meaning: the comment after the field in the class source (subclasses win).

    The field comments (here and in each task's config class) are the one source of truth for
    `jaxgen train TASK --help`.
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # no source (frozen app): help shows types and defaults only
            continue
        for line in source.splitlines():
            m = re.match(r"    (\w+): [^=]+=[^#]*#\s*(.+)$", line)
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def fields(cls: type[TrainConfig]) -> dict[str, Any]:
    """Field name -> its type (int for `int | None`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: _inner(hints[f.name]) for f in dataclasses.fields(cls)}


def optional_fields(cls: type[TrainConfig]) -> frozenset[str]:
    """The fields that may be None: chosen for the data by the task's table (jaxgen.configs)."""
    hints = typing.get_type_hints(cls)
    return frozenset(f.name for f in dataclasses.fields(cls) if _inner(hints[f.name]) is not hints[f.name])


def _inner(typ: Any) -> Any:
    """T for `T | None`, else typ."""
    if isinstance(typ, types.UnionType) or typing.get_origin(typ) is typing.Union:
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        return args[0] if len(args) == 1 else typ
    return typ


def parse_sets(cls: type[TrainConfig], sets: list[str] | None) -> dict[str, Any]:
    """Turn ['key=value', ...] into typed overrides for config class `cls`; unknown keys are errors."""
    task = cls.TASK
    types = fields(cls)
    out: dict[str, Any] = {}
    for item in sets or []:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"--set takes key=value, got {item!r} (e.g. --set lr=3e-4)")
        if key not in types:
            raise UserError(f"unknown key {key!r} for {task}: valid keys are {', '.join(sorted(types))}")
        out[key] = _convert(key, raw, types[key])
    return out


def make(cls: type[TrainConfig], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The validated config of class `cls` with `overrides` applied (a list for a widths field, as JSON
    and to_dict write it, is taken as its tuple)."""
    types = fields(cls)
    scalar = (bool, int, float, str)
    overrides = dict(overrides or {})
    preset = overrides.get("preset")
    presets = getattr(cls, "PRESETS", {})
    if preset not in (None, "none") and preset in presets:  # its values, under what the user set
        own = presets[preset].get("arch")
        if own is not None and overrides.get("arch", own) != own:
            raise UserError(f"preset={preset} is an arch={own} network: drop --set arch={overrides['arch']}")
        overrides = {**presets[preset], **overrides}
    overrides = {
        k: tuple(v) if isinstance(v, list) and types.get(k) not in scalar else v for k, v in overrides.items()
    }
    cfg = cls(**overrides)
    _typed(cfg)  # before any check compares values
    cfg.check()
    for key in overrides:
        if not cfg.applies(key) and overrides[key] is not None:
            owners = [a for a, spec in cls.ARCHS.items() if key in spec.keys]
            raise UserError(
                f"{key} does nothing for arch={getattr(cfg, 'arch', '?')} (it is arch={'/'.join(owners)}'s):"
                f" drop --set {key}, or add --set arch={owners[0]}"
            )
    object.__setattr__(cfg, "_explicit", frozenset(overrides))  # what the user set (resume checks these)
    return cfg


def explicit(cfg: TrainConfig) -> frozenset[str]:
    """The keys the user set on the command line or in --config (make records them)."""
    return getattr(cfg, "_explicit", frozenset())


def record(cfg: TrainConfig) -> dict[str, Any]:
    """The run's record (resolved.json's keys): every key that does anything under cfg's architecture,
    JSON-ready. A resolved config has no None left in it."""
    return {k: v for k, v in to_dict(cfg).items() if cfg.applies(k)}


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls: type[TrainConfig], raw: dict[str, Any]) -> TrainConfig:
    """Rebuild a saved config of class `cls` (a record, or to_dict's output: keys another architecture
    reads are dropped where they hold the class default); unknown keys are an error naming them."""
    types = fields(cls)
    unknown = set(raw) - set(types)
    if unknown:
        raise UserError(f"keys this jaxgen does not know: {sorted(unknown)}")
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    probe = cls(**{k: v for k, v in vals.items() if k == "arch"})
    default = cls()
    vals = {k: v for k, v in vals.items() if probe.applies(k) or v != getattr(default, k)}
    return make(cls, vals)
