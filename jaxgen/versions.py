"""The versions of jaxgen and of the packages it stands on, read from the installed metadata without
importing them (`jaxgen --version` answers before JAX loads), and how they compare with requirements.lock,
the tested set (docs/install.md)."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import re
from pathlib import Path

# What `jaxgen --version` and env.json name: the packages whose version changes what a run computes or saves.
STACK = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorboardX", "tensorflow-datasets")
# In a source checkout (an editable install): the repository's lock. An installed wheel has none.
LOCK_FILE = Path(__file__).resolve().parents[1] / "requirements.lock"


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): 'Orbax_Checkpoint' -> 'orbax-checkpoint'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def report() -> str:
    """`jaxgen --version`: jaxgen's version, then one 'name version' line per package of STACK, Python's."""
    lines = [f"jaxgen {version('jaxgen') or '(not installed)'}"]
    lines += [f"{name} {version(name) or '(not installed)'}" for name in STACK]
    lines.append(f"python {platform.python_version()}")
    status = lock_status()
    if status is not None:
        lines.append(f"lock {status}")
    return "\n".join(lines)


class PrintVersions(argparse.Action):
    """`--version` printing `report()` as it is (argparse's own version action rewraps the text)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(report())
        parser.exit()


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of a pip-freeze file's `name==version` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, ver = line.partition("==")
            pins[canonical(name.split("[", 1)[0])] = ver.split(";", 1)[0].strip()
    return pins


def lock_status(path: Path = LOCK_FILE, installed: dict[str, str] | None = None) -> str | None:
    """'matches' when every installed package the lock names is at its locked version; else 'differs:
    name installed (locked version), ...'; None without a lock file. `installed`: {name: version} (default:
    this environment's distributions, read in one pass)."""
    if not path.is_file():
        return None
    have: dict[str, set[str]] = {}
    if installed is None:  # a stale second dist-info of a package (left by an upgrade) is no difference
        for d in importlib.metadata.distributions():
            have.setdefault(canonical(d.metadata["Name"] or ""), set()).add(d.version)
    else:
        have = {canonical(name): {ver} for name, ver in installed.items()}
    locked = read_lock(path)
    differs = [f"{name} {'/'.join(sorted(have[name]))} (locked {ver})" for name, ver in locked.items()
               if name in have and ver not in have[name]]  # fmt: skip
    return "differs: " + ", ".join(sorted(differs)) if differs else "matches"
