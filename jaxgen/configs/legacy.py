"""Runs written before the record was complete (resolved.json without "record_format": jaxgen 0.1.0, from
the day arch=conv landed, 5f428ba, to f8a5c2a) read and resume as their own code ran them.

How this is known: those versions wrote resolved.json with every field of the task's flat config, after
their `resolve` had filled the data-dependent values; what it left as a placeholder (0, -1, "auto", an empty
list) was decided again by the model code of the day, and each placeholder below is what that code built
from it then (git history of jaxgen/tasks/*.py and jaxgen/models.py, cited per entry). Pinned by
tests/test_record.py on run directories written by e5841b5 (tests/fixtures/legacy-e5841b5/).
"""

from __future__ import annotations

from typing import Any

from jaxgen import activation_names, config

# How each "chosen for the data" key was spelled while it was left for the data (0.1.0's config classes).
SENTINELS: dict[str, Any] = {
    "steps": 0, "batch_size": 0, "lr": 0.0, "latent_dim": 0, "d_lr": 0.0, "pack": 0, "r1": -1.0, "ema": -1.0,
    "d_hidden": [], "d_channels": [], "warmup_steps": -1, "max_shift": -1.0, "max_rotate": -1.0,
    "max_scale": -1.0, "hflip": -1.0, "tta": "auto", "init": "auto",
}  # fmt: skip


def _old_warmup(raw: dict[str, Any]) -> int:
    return int(raw["steps"]) // 20  # MLPConfig.warmup: steps // 20 when warmup_steps == -1


def _old_init(raw: dict[str, Any]) -> str:
    return activation_names.default_init(raw.get("activation", "relu"))  # models.MLP: "auto"


# (task, key) -> what the placeholder meant, given the rest of the old record.
MEANT: dict[tuple[str, str], Any] = {
    ("mlp", "warmup_steps"): _old_warmup,
    ("mlp", "init"): _old_init,
    ("ae", "init"): _old_init,
    # GAN.resolve never wrote these; models.gan_nets: `cfg.d_hidden or cfg.hidden`, and until dae395f
    # `cfg.d_channels or cfg.channels` (since dae395f resolve writes d_channels concretely: a conv run's
    # record then never holds an empty one); GAN.__init__: `cfg.d_lr or cfg.lr`.
    ("gan", "d_hidden"): lambda raw: raw.get("hidden"),
    ("gan", "d_channels"): lambda raw: raw.get("channels"),
    ("gan", "d_lr"): lambda raw: raw.get("lr"),
    # tta=auto was always resolved; a record from before tta existed ran without test-time augmentation.
    ("mlp", "tta"): lambda raw: "none",
}
# Keys today's configs read that older records lack: the value that reproduces what the old code ran.
MISSING: dict[tuple[str, str], Any] = {
    ("mlp", "tta"): "none",
}
# Keys older configs had that did nothing for the task (the GAN's init: no GAN network ever read it).
DROPPED = {("gan", "init")}


def upgrade(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """An unversioned resolved.json body as today's record of the same run (concrete, own keys only)."""
    task = cls.TASK
    out = {k: v for k, v in raw.items() if (task, k) not in DROPPED}
    for (t, key), meant in MEANT.items():
        if t == task and key in out and _placeholder(key, out[key]):
            out[key] = meant(out)
    for (t, key), value in MISSING.items():
        if t == task and key not in out:
            out[key] = value
    probe = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in out.items() if k == "arch"})
    return {k: v for k, v in out.items() if probe.applies(k)}


def asked(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """An older config.json (what a user asked) as today's overrides: its placeholders for the data become
    "not set", so today's table chooses them, as the old one did; keys that no longer exist drop."""
    optional = config.optional_fields(cls)
    task = cls.TASK
    return {
        k: v
        for k, v in raw.items()
        if (task, k) not in DROPPED and not (k in optional and _placeholder(k, v))
    }


def _placeholder(key: str, value: Any) -> bool:
    """Whether `value` is how 0.1.0 spelled "chosen for the data" for `key` (None: today's spelling)."""
    if value is None:
        return True
    if key not in SENTINELS or isinstance(value, bool):
        return False
    sentinel = SENTINELS[key]
    return list(value) == sentinel if isinstance(value, (list, tuple)) else value == sentinel
