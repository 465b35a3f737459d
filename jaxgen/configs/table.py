"""Defaults for the data: one table per task, keyed by what the data is and the architecture.

A row says: on this data (`*`, a kind of data: digits, clothes, toy; or one source: embedded, toy:ring8) with
this architecture (`*`, mlp, conv), these keys take these values, because (`why`, and `link` to the
measurement). Rows apply in order, so a later, narrower row overrides an earlier, broader one; what the user
set overrides every row. A value is a constant or a `Rule` computed from the other values and the data
(steps from epochs, D's learning rate from G's). `jaxgen config`, `--help` and a new run's resolved.json all
read the same table, so help, code and record cannot drift.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from jaxgen import activation_names
from jaxgen.errors import UserError


@dataclasses.dataclass(frozen=True)
class Rule:
    """A value computed from the other resolved values (`cfg`, a dict) and the dataset."""

    text: str  # how --help shows it ("90 epochs", "= lr")
    fn: Callable[[dict[str, Any], Any], Any]

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Default:
    """One row of a task's table of defaults."""

    data: str  # "*", a data family (digits, clothes, toy) or a source spec (embedded, toy:ring8)
    arch: str  # "*" or an architecture name
    values: dict[str, Any]  # key -> constant or Rule
    why: str  # one line: why these values
    link: str  # the measurement behind them (a docs page and section)

    def matches(self, arch: str, ds: Any) -> bool:
        data_ok = self.data in ("*", ds.family, ds.spec) or (self.data == "toy" and ds.kind == "toy")
        return data_ok and self.arch in ("*", arch)


def epochs(n: float) -> Rule:
    """Steps for `n` passes over the training split at the resolved batch size."""
    return Rule(
        f"{n:g} epochs", lambda c, ds: max(1, math.ceil(n * len(ds.train["label"]) / c["batch_size"]))
    )


def same_as(key: str) -> Rule:
    """The resolved value of another key."""
    return Rule(f"= {key}", lambda c, ds: c[key])


# Rows and rules the image tasks share.
PAIRED_INIT = Rule("the activation's", lambda c, ds: activation_names.default_init(c["activation"]))
DIGITS = Default("digits", "*", {"max_shift": 2.0, "max_rotate": 10.0, "max_scale": 0.1, "hflip": 0.0},
                 "affine distortions keep a digit a digit; no mirror (a mirrored 2 is no 2)",
                 "docs/results.md#mlp-on-mnist-jaxgen-train-mlp-default-config")  # fmt: skip
# Images jaxgen knows nothing about: colour pictures (emoji, photos) and grey ones that are neither digits
# nor clothes. A mirrored emoji or photo is still one of its kind; a small shift keeps it whole.
OTHER_IMAGES = (
    Default("colour", "*", {"max_shift": 2.0, "max_rotate": 0.0, "max_scale": 0.0, "hflip": 0.5},
            "colour pictures: mirrors and 2-pixel shifts (chosen on the emoji's validation split)",
            "docs/colour.md#defaults-for-colour-images"),
    Default("grey", "*", {"max_shift": 0.0, "max_rotate": 0.0, "max_scale": 0.0, "hflip": 0.0},
            "grey images of unknown kind: no distortion is assumed to keep their class",
            "docs/usage.md#data---data"),
)  # fmt: skip


def _own_side(c: dict[str, Any], ds: Any) -> int:
    return int(ds.shape[0]) if ds.kind == "image" else 0


# Every task's first rows: the size images are trained at (before any other value is chosen for the data,
# which is then read at that size: jaxgen.runs.plan).
IMAGE_SIZE = (
    Default("*", "*", {"image_size": Rule("the images' own side (toys: 0)", _own_side)},
            "images as they come (28 for MNIST); toy points have no size", "docs/usage.md#data---data"),
    Default("colour", "*", {"image_size": Rule("32 (smaller: own)", lambda c, ds: min(32, _own_side(c, ds)))},
            "colour images at 32x32: a CNN, a conv VAE and DCGAN each train"
            " in minutes on a CPU (64x64 is one --set away)", "docs/colour.md#defaults-for-colour-images"),
)  # fmt: skip


def fill(cfg: Any, ds: Any, table: tuple[Default, ...]) -> dict[str, Any]:
    """The values the table gives the fields of `cfg` that are None and apply to its architecture."""
    arch = getattr(cfg, "arch", "*")
    chosen: dict[str, Any] = {}
    for row in table:
        if row.matches(arch, ds):
            chosen.update(row.values)
    missing = [
        f.name
        for f in dataclasses.fields(cfg)
        if getattr(cfg, f.name) is None and cfg.applies(f.name) and f.name not in chosen
    ]
    if missing:  # a hole in the table is a bug of jaxgen's, tested for every (data, arch)
        raise UserError(f"no default for {missing} on {ds.spec} with arch={arch}: set them with --set")
    current = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    todo = [k for k in chosen if current.get(k, 0) is None and cfg.applies(k)]
    for k in todo:  # constants first, so that rules see every value they may read
        if not isinstance(chosen[k], Rule):
            current[k] = chosen[k]
    for k in todo:
        if isinstance(chosen[k], Rule):
            current[k] = chosen[k].fn(current, ds)
    return {k: current[k] for k in todo}


def value(key: str, cfg: Any, ds: Any, table: tuple[Default, ...]) -> Any:
    """What the table alone gives `key` on `ds` (the last matching row's; a rule reads the data and cfg's
    own values): the image size a new run reads its data at, before anything else is chosen."""
    arch = getattr(cfg, "arch", "*")
    rows = [row.values[key] for row in table if key in row.values and row.matches(arch, ds)]
    if not rows:
        raise ValueError(f"no row gives {key}")
    current = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    return rows[-1].fn(current, ds) if isinstance(rows[-1], Rule) else rows[-1]


def render(table: tuple[Default, ...]) -> str:
    """The table as --help shows it: one line per row, its why and link beneath."""
    lines = []
    for row in table:
        values = ", ".join(f"{k} {_shown(v)}" for k, v in row.values.items())
        lines.append(f"  data {row.data}, arch {row.arch}: {values}")
        lines.append(f"      {row.why} ({row.link})")
    return "\n".join(lines)


def _shown(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v)) or "(none)"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)
