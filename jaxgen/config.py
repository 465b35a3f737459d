"""The config blocks every task shares (run, network, augmentation), and `--set key=value` parsing, --help
text and JSON for any task's config class, rejecting mistakes before anything compiles.

Each task's own config class lives in its task file (jaxgen/tasks/) and extends a block here; the
functions below take the class, never a task name (the CLI resolves the name once: jaxgen.tasks).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import typing
from pathlib import Path
from typing import Any, ClassVar

from jaxgen import activations
from jaxgen.errors import UserError


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What every task's run shares: the driver reads only these."""

    seed: int = 0  # the whole run is a pure function of (config, seed)
    steps: int = 3000  # total optimizer steps
    batch_size: int = 128  # global batch, split over devices
    lr: float = 1e-3  # peak learning rate
    ckpt_every: int = 1000  # checkpoint every this many steps (and at the end)
    log_every: int = 100  # steps per compiled chunk: one host sync, one metrics line per chunk
    keep: int = 3  # checkpoints kept: the newest this many (older ones deleted as new ones land)
    keep_every: int = 0  # also keep every checkpoint whose step is a multiple of this forever; 0 = none
    precision: str = "default"  # matmul precision: default (TF32 on NVIDIA GPUs), high, highest (full fp32)
    dtype: str = "float32"  # compute dtype of the dense layers: float32 or bfloat16 (weights stay float32)
    val: int = 0  # training examples held out (a fixed choice) as the validation split, scored at checkpoints

    TASK: ClassVar[str] = ""  # the task's name in jaxgen.tasks.TASKS (config.json's "task")
    # The tiny run that tests/test_tasks.py puts every registered task through (and the data it uses).
    TINY: ClassVar[dict[str, Any]] = {}
    TINY_DATA: ClassVar[str] = "embedded"
    # Fields that may be 0, meaning "chosen for the data": the task resolves them in its own cfg, which
    # is what the driver runs (config.json keeps the 0, so rerunning the same command resumes).
    FOR_DATA: ClassVar[tuple[str, ...]] = ()

    def check(self) -> None:
        """Raise a UserError naming the fix for any value out of range."""
        _typed(self)
        positive(self, "ckpt_every", "log_every", "keep")
        if self.keep_every < 0:
            raise UserError(f"keep_every must be >= 0 (0 = no permanent keepers), got {self.keep_every}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        also = {
            k: " (or 0: chosen for the data)" if k in self.FOR_DATA else ""
            for k in ("steps", "lr", "batch_size")
        }
        for key in ("steps", "batch_size"):
            value = getattr(self, key)
            if not (value > 0 or (value == 0 and key in self.FOR_DATA)):
                raise UserError(f"{key} must be a positive integer{also[key]}, got {value}")
        if not (self.lr > 0 or (self.lr == 0 and "lr" in self.FOR_DATA)):
            raise UserError(f"lr must be > 0{also['lr']}, got {self.lr}")
        if self.val < 0:
            raise UserError(f"val must be >= 0 training examples to hold out (0 = none), got {self.val}")
        if not 0 <= self.seed < 2**31:
            raise UserError(f"seed must be in [0, 2**31), got {self.seed}")


@dataclasses.dataclass(frozen=True)
class NetConfig(TrainConfig):
    """The network block every task shares: dense layers of `hidden` widths with one activation."""

    hidden: tuple[int, ...] = (800, 800)  # hidden layer widths (arch=mlp)
    activation: str = "relu"  # any name in jaxgen.activations (leaky_relu:0.1 too)
    init: str = "auto"  # kernel initialiser; auto = the one the activation is normally used with
    arch: str = "mlp"  # mlp: dense layers of `hidden`; conv: convolutions of `channels` (images only)
    channels: tuple[int, ...] = (32, 64)  # arch=conv: feature maps of each convolution stage
    norm: str = "batch"  # arch=conv: batch (BatchNorm; running statistics in the State) or none
    conv_impl: str = "auto"  # arch=conv: auto (cpu: slices, else xla), slices (shifted slices + matmul), xla

    def check(self) -> None:
        super().check()
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise UserError(f"hidden must be a comma list of positive widths, got {self.hidden}")
        activations.validate(self.activation)
        if self.init != "auto":
            activations.initializer(self.init)
        if self.arch not in ARCHS:
            raise UserError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}: --set arch=conv")
        if not self.channels or any(c <= 0 for c in self.channels):
            raise UserError(f"channels must be a comma list of positive widths, got {self.channels}")
        if self.norm not in NORMS:
            raise UserError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise UserError(f"conv_impl must be one of {', '.join(CONV_IMPLS)}, got {self.conv_impl!r}")

    def require_images_for_conv(self, ds: Any) -> None:
        """One-line error for arch=conv on data that is not 28 x 28 images."""
        if self.arch == "conv" and ds.kind != "image":
            raise UserError(
                f"arch=conv convolves 28x28 images; {ds.spec!r} is {ds.info.get('dim', '?')}-D toy points:"
                " use --set arch=mlp for toy data"
            )


@dataclasses.dataclass(frozen=True)
class AugmentConfig(NetConfig):
    """Random affine distortion of each training image, fresh every step (MNIST tasks)."""

    augment: bool = True  # random affine distortion of each training image, fresh every step (not toys)
    max_shift: float = -1.0  # translation, pixels; -1 = for the data (digits 2; clothes: mlp 0, ae 2)
    max_rotate: float = -1.0  # rotation, degrees; -1 = for the data (digits 10, clothes 0)
    max_scale: float = -1.0  # zoom range 1 +- max_scale; -1 = for the data (digits 0.1, clothes 0)
    hflip: float = -1.0  # probability of a left-right mirror; -1 = for the data (digits 0, clothes 0.5)

    def check(self) -> None:
        super().check()
        if not (0 <= self.max_shift <= 8 or self.max_shift == -1):
            raise UserError(f"max_shift must be in [0, 8] pixels (-1: for the data), got {self.max_shift:g}")
        if not (0 <= self.max_rotate <= 180 or self.max_rotate == -1):
            raise UserError(f"max_rotate must be in [0, 180] (-1: for the data), got {self.max_rotate:g}")
        if not (0 <= self.max_scale < 1 or self.max_scale == -1):
            raise UserError(f"max_scale must be in [0, 1) (-1: for the data), got {self.max_scale}")
        if not (0 <= self.hflip <= 1 or self.hflip == -1):
            raise UserError(f"hflip must be a probability in [0, 1] (-1: for the data), got {self.hflip}")

    # "Chosen for the data": affine distortions that keep a digit a digit (no mirror: a mirrored 2 is
    # no 2) and, for clothes, mirrors and small shifts only (a rotated or zoomed garment is not what the
    # camera saw; Fashion-MNIST's images are centred and upright).
    AUGMENT_FOR_DATA: ClassVar[dict[str, dict[str, float]]] = {
        "digits": {"max_shift": 2.0, "max_rotate": 10.0, "max_scale": 0.1, "hflip": 0.0},
        "clothes": {"max_shift": 2.0, "max_rotate": 0.0, "max_scale": 0.0, "hflip": 0.5},
    }

    # steps=0 ("for the data"): measured choices by spec ("toy:" = every toy), else EPOCHS epochs; the
    # CONV_ pair is the same choice for arch=conv.
    STEPS_FOR_DATA: ClassVar[dict[str, int]] = {}
    EPOCHS: ClassVar[float] = 20
    CONV_STEPS_FOR_DATA: ClassVar[dict[str, int]] = {}
    CONV_EPOCHS: ClassVar[float] = 20

    def for_data(self, ds: Any) -> dict[str, Any]:
        """The fields left "for the data" (augmentation at -1, steps at 0), filled in for dataset `ds`."""
        chosen = self.AUGMENT_FOR_DATA.get(ds.family, self.AUGMENT_FOR_DATA["digits"])
        changes: dict[str, Any] = {k: v for k, v in chosen.items() if getattr(self, k) == -1}
        if self.steps == 0:
            conv = self.arch == "conv"
            table = self.CONV_STEPS_FOR_DATA if conv else self.STEPS_FOR_DATA
            changes["steps"] = steps_for_data(
                ds, self.batch_size, table, self.CONV_EPOCHS if conv else self.EPOCHS
            )
        return changes


# Keys that may differ when the same workdir is run again: extending a run is resuming it.
RESUMABLE_KEYS = ("steps", "ckpt_every", "log_every", "keep", "keep_every")

ARCHS = ("mlp", "conv")  # the network families each image task builds (jaxgen.models)
NORMS = ("batch", "none")  # jaxgen.models.NORMS
CONV_IMPLS = ("auto", "slices", "xla")  # jaxgen.convs.IMPLS (kept here: config imports no JAX)
PRECISIONS = ("default", "high", "highest")  # jax.default_matmul_precision names
DTYPES = ("float32", "bfloat16")
INT_LIMIT = 2**31  # steps and counters live in int32 on the device


def _typed(cfg: Any) -> None:
    """Every field holds its declared type (a config built from JSON or Python, not only from --set):
    ints are ints below 2**31, floats are finite, bools are bools, widths are tuples of ints."""
    for name, typ in fields(type(cfg)).items():
        v = getattr(cfg, name)
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
        if getattr(cfg, name) <= 0:
            raise UserError(f"{name} must be a positive integer, got {getattr(cfg, name)}")


def unit_interval(cfg: Any, *names: str) -> None:
    for name in names:
        if not 0 <= getattr(cfg, name) < 1:
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


def describe(cls: type[TrainConfig]) -> str:
    """The --set keys of a config class: one line each with type, default and meaning."""
    helps = field_help(cls)
    defaults = to_dict(cls())
    lines = []
    for name, typ in fields(cls).items():
        kind = {int: "int", float: "float", bool: "bool", str: "str"}.get(typ, "comma list of int")
        value = defaults[name]
        shown = ",".join(map(str, value)) if isinstance(value, list) else value
        shown = str(shown).lower() if typ is bool else shown
        lines.append(f"  {name:<16} {kind:<18} {str(shown):<16} {helps.get(name, '')}")
    return "\n".join(lines)


def fields(cls: type[TrainConfig]) -> dict[str, Any]:
    """Field name -> resolved type."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


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
    overrides = {
        k: tuple(v) if isinstance(v, list) and types.get(k) not in scalar else v
        for k, v in (overrides or {}).items()
    }
    cfg = cls(**overrides)
    _typed(cfg)  # before any check compares values
    cfg.check()
    return cfg


def read_file(cls: type[TrainConfig], path: str) -> tuple[dict[str, Any], str | None]:
    """(typed overrides, data spec or None) from a saved config.json (a run's, or `jaxgen config TASK`'s)."""
    task = cls.TASK
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--config {path}: no such file (save one with: jaxgen config {task} > {path})")
    try:
        raw = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"--config {path} is not valid JSON ({err}): fix it or save a new one") from None
    if not isinstance(raw, dict):
        raise UserError(f"--config {path} must hold a JSON object of key: value pairs")
    if raw.pop("task", task) != task:
        raise UserError(f"--config {path} is another task's config: use it with that task, or pick another")
    spec = raw.pop("data", None)
    types = fields(cls)
    unknown = sorted(set(raw) - set(types))
    if unknown:
        raise UserError(f"--config {path}: unknown keys {unknown} for {task}; see jaxgen train {task} --help")
    sets = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in raw.items()]
    return parse_sets(cls, sets), spec


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls: type[TrainConfig], raw: dict[str, Any]) -> TrainConfig:
    """Rebuild a saved config of class `cls`; keys this version does not know are an error naming them."""
    types = fields(cls)
    unknown = set(raw) - set(types)
    if unknown:
        raise UserError(f"config.json has keys this jaxgen does not know: {sorted(unknown)}; upgrade jaxgen")
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return make(cls, vals)


def steps_for_data(ds: Any, batch_size: int, fixed: dict[str, int], epochs: float) -> int:
    """Optimizer steps "chosen for the data": `fixed[spec]` where the spec has a measured choice (the
    embedded sample, toys), else `epochs` passes over the training split at `batch_size`."""
    for spec, steps in fixed.items():
        if ds.spec == spec or (spec.endswith(":") and ds.spec.startswith(spec)):
            return steps
    return max(1, math.ceil(epochs * len(ds.train["label"]) / batch_size))
