"""The tasks' configs, without JAX: CONFIGS = {name: ConfigClass}, the CLI's edge (--help, `jaxgen config`, a
bad --set value) and the run's record (resolved.json) read only this.

`resolve(cfg, ds)` fills what was left for the data from the task's table (jaxgen.configs.table), once, for a
new run; `from_record` rebuilds a run's config from its resolved.json, whatever today's defaults are.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from pathlib import Path
from typing import Any

from jaxgen import config
from jaxgen import data as data_lib
from jaxgen.config import TrainConfig
from jaxgen.configs import legacy, table
from jaxgen.configs.autoencoder import AEConfig
from jaxgen.configs.classifier import MLPConfig
from jaxgen.configs.gan import GANConfig
from jaxgen.errors import UserError

CONFIGS: dict[str, type[TrainConfig]] = {"mlp": MLPConfig, "ae": AEConfig, "gan": GANConfig}
# The record's format: 2 = every key concrete, only the keys the run's architecture reads. An unversioned
# resolved.json was written before (jaxgen.configs.legacy reads it as its own code meant it).
RECORD_FORMAT = 2

__all__ = ["CONFIGS", "config_class", "data_for", "from_record", "make_config", "record", "resolve"]


def config_class(name: str) -> type[TrainConfig]:
    """The config class of task `name`; an unknown name is a one-line error listing the tasks."""
    if name not in CONFIGS:
        raise UserError(f"unknown task {name!r}: choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]


def make_config(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The validated config of task `name` with `overrides` applied (what a user asks for)."""
    return config.make(config_class(name), overrides)


def resolve(cfg: TrainConfig, ds: Any) -> TrainConfig:
    """The config as it runs on `ds`: every value left for the data taken from the task's table, checked
    against the data. Idempotent (a resolved config has nothing left to fill)."""
    cfg.require_images(ds)
    values = table.fill(cfg, ds, type(cfg).DEFAULTS)
    out = dataclasses.replace(cfg, **values) if values else cfg
    object.__setattr__(out, "_explicit", config.explicit(cfg))
    out.check_data(ds)
    out.check()
    return out


def data_for(cfg: TrainConfig, spec: str) -> data_lib.Dataset:
    """The data a run of `cfg` trains on: `spec` read at cfg.image_size, or, left for the data, at the size
    its table gives (colour images: 32), with cfg.val training examples held out for validation."""
    ds = data_lib.load(spec, cfg.image_size)
    if cfg.image_size is None and ds.kind == "image":
        size = table.value("image_size", cfg, ds, type(cfg).DEFAULTS)
        if (size, size) != tuple(ds.shape[:2]):
            ds = data_lib.load(spec, size)
    return data_lib.with_validation(ds, cfg.val)


def record(cfg: TrainConfig, spec: str) -> dict[str, Any]:
    """resolved.json's body for a resolved `cfg` trained on `spec`: what `jaxgen config` prints too."""
    body = config.record(cfg)
    unresolved = sorted(k for k, v in body.items() if v is None)
    if unresolved:
        raise ValueError(f"record of an unresolved config: {unresolved}")
    return {
        "task": cfg.TASK,
        "data": spec,
        **body,
        "jaxgen_version": version(),
        "record_format": RECORD_FORMAT,
    }


def from_record(raw: dict[str, Any], where: str) -> tuple[str, str, TrainConfig]:
    """(task, data spec, config) from a run's resolved.json body; an older record is read as its code
    meant it (jaxgen.configs.legacy). Errors name `where` and say it is the record, not the checkpoints."""
    raw = dict(raw)
    task, spec = raw.pop("task", None), raw.pop("data", None)
    if not isinstance(task, str) or not isinstance(spec, str):
        raise UserError(
            f'{where} must be a JSON object with "task" and "data" strings: restore it from a copy'
        )
    if task not in CONFIGS:
        raise UserError(
            f"{where} names task {task!r}, which this jaxgen does not have ({', '.join(CONFIGS)})"
        )
    raw.pop("jaxgen_version", None)
    fmt = raw.pop("record_format", 1)
    cls = CONFIGS[task]
    # A record from before image_size existed: that code read 28x28 images only (toy points: 0).
    raw.setdefault("image_size", 0 if spec.startswith("toy:") else 28)
    if fmt == 1:
        raw = legacy.upgrade(cls, raw)
    elif fmt != RECORD_FORMAT:
        raise UserError(
            f"{where} has record format {fmt}, newer than this jaxgen's {RECORD_FORMAT}: upgrade jaxgen"
        )
    try:
        cfg = config.from_dict(cls, raw)
    except UserError as err:
        raise UserError(f"{where} does not describe a run this jaxgen can rebuild: {err}") from None
    return task, spec, cfg


def read_file(cls: type[TrainConfig], path: str) -> tuple[dict[str, Any], str | None]:
    """(typed overrides, data spec or None) from a saved file: `jaxgen config`'s output, a run's
    resolved.json or config.json (an older one's placeholders read as "chosen for the data")."""
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
    raw.pop("jaxgen_version", None)
    if raw.pop("record_format", 1) == 1:
        raw = legacy.asked(cls, raw)
    unknown = sorted(set(raw) - set(config.fields(cls)))
    if unknown:
        raise UserError(f"--config {path}: unknown keys {unknown} for {task}; see jaxgen train {task} --help")
    sets = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in raw.items() if v is not None
    ]
    overrides = config.parse_sets(cls, sets)
    probe = dataclasses.replace(cls(), **overrides)  # applies may read more than arch (the GAN's gp: loss)
    return {k: v for k, v in overrides.items() if probe.applies(k)}, spec


def describe(cls: type[TrainConfig]) -> str:
    """--help's epilog: every --set key (type, default, meaning), then the table of defaults for the data."""
    helps = config.field_help(cls)
    defaults = config.to_dict(cls())
    lines = ["keys for --set KEY=VALUE (key, type, default, meaning; 'for data': from the table below):"]
    for name, typ in config.fields(cls).items():
        kind = {int: "int", float: "float", bool: "bool", str: "str"}.get(typ, "comma list of int")
        value = defaults[name]
        shown = ",".join(map(str, value)) if isinstance(value, list) else value
        shown = "for data" if value is None else str(shown).lower() if typ is bool else shown
        lines.append(f"  {name:<16} {kind:<18} {str(shown):<16} {helps.get(name, '')}")
    lines.append(
        "\ndefaults for the data (later rows win; `jaxgen config TASK --data SPEC` prints what runs):"
    )
    lines.append(table.render(cls.DEFAULTS))
    return "\n".join(lines)


def version() -> str:
    """The installed jaxgen's version (recorded with every run)."""
    try:
        return importlib.metadata.version("jaxgen")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
