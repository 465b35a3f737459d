"""The install story (docs/install.md): requirements.lock pins every dependency inside pyproject.toml's
ranges, requirements-floors.txt is pyproject.toml's lower bounds, the Makefile installs from the lock, and
`jaxgen --version` names the stack without importing JAX. Files only: no network, no install."""

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from jaxgen import versions

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PYPROJECT["dependencies"]]
EXTRAS = PYPROJECT["optional-dependencies"]
LOCKED_EXTRAS = ("test", "tb")  # the lock covers jaxgen[test,tb]; cuda/tpu/peers are the user's choice


def _pins(path: Path) -> dict[str, Version]:
    """{canonical name: version} of a file of `name==version` lines; anything else is an error."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: not an exact pin: {line!r}"
            name = canonicalize_name(req.name)
            assert name not in pins, f"{path.name}: {name} pinned twice"
            pins[name] = Version(specs[0].version)
    return pins


def _floor(req: Requirement) -> Version | None:
    lows = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return max(lows) if lows else None


def test_lock_pins_every_declared_dependency_inside_its_range():
    lock = _pins(REPO / "requirements.lock")
    declared = RUNTIME + [Requirement(r) for extra in LOCKED_EXTRAS for r in EXTRAS[extra]]
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in lock, f"requirements.lock lacks {req.name}: run make lock"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"requirements.lock has {req.name}=={lock[name]}, outside pyproject.toml's {req}: run make lock"
        )
    assert "jaxgen" not in lock  # the project itself is installed from the checkout, not pinned


def test_floors_are_pyproject_lower_bounds():
    floors = _pins(REPO / "requirements-floors.txt")
    bounds = {canonicalize_name(r.name): _floor(r) for r in RUNTIME}
    unfloored = sorted(name for name, low in bounds.items() if low is None)
    assert not unfloored, f"runtime dependencies without a floor (>=): {unfloored}"
    assert floors == bounds, "requirements-floors.txt and pyproject.toml's lower bounds differ: raise both"
    for req in RUNTIME:  # a floor above its own upper bound could not be installed
        assert req.specifier.contains(floors[canonicalize_name(req.name)], prereleases=True), str(req)


def test_internals_are_bounded_above():
    """The packages whose internals jaxgen reaches into (docs/install.md) have an upper bound."""
    for name in ("tensorboardX", "tensorflow-datasets", "mlxtend"):
        (req,) = [r for r in RUNTIME if canonicalize_name(r.name) == canonicalize_name(name)]
        assert any(s.operator == "<" for s in req.specifier), f"{req}: needs an upper bound"


def _make_dry_run(*args: str) -> str:
    """The commands `make` would run for a fresh checkout (-B: as if nothing were built), none run."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    cmd = ["make", "-n", "-B", "-C", str(REPO), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_makefile_installs_the_locked_set():
    for target, what in (("install", "-e ."), ("test", "-e '.[test]'")):
        pip = [line for line in _make_dry_run(target).splitlines() if "pip install" in line and what in line]
        assert pip, f"make {target} installs no {what}"
        assert all("-c requirements.lock" in line for line in pip), pip
    # The newest versions only when asked, into their own venv: .venv keeps the locked set.
    latest = [line for line in _make_dry_run("test", "LATEST=1").splitlines() if "pip install" in line]
    assert latest and all(".venv-latest/" in line and "requirements.lock" not in line for line in latest)
    assert any("--upgrade" in line and "-e '.[test]'" in line for line in latest)


def test_version_names_the_stack_without_importing_jax():
    code = (
        "import sys\nfrom jaxgen import cli\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('jax imported' if 'jax' in sys.modules else 'jax not imported')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "jax not imported"
    assert lines[0] == f"jaxgen {versions.version('jaxgen')}"
    for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorboardX"):
        assert f"{name} {versions.version(name)}" in lines, (name, lines)
    assert any(line.startswith("lock ") for line in lines)  # this checkout has a lock


def test_lock_status(tmp_path):
    lock = tmp_path / "requirements.lock"
    assert versions.lock_status(lock, {"numpy": "2.4.6"}) is None  # no lock file: an installed wheel
    lock.write_text("# header\nnumpy==2.4.6\nOrbax_Checkpoint==0.12.8\ntorch==2.0.0\n")
    # Packages the lock names but this environment lacks (torch) are no difference.
    assert versions.lock_status(lock, {"numpy": "2.4.6", "orbax-checkpoint": "0.12.8"}) == "matches"
    got = versions.lock_status(lock, {"NumPy": "2.5.0", "orbax-checkpoint": "0.12.8", "scipy": "1.0"})
    assert got == "differs: numpy 2.5.0 (locked 2.4.6)"


def test_env_json_names_the_versions():
    from jaxgen import runtime

    info = runtime.env_info()
    for key, package in (("numpy", "numpy"), ("tensorboardX", "tensorboardX"),
                         ("tensorflow_datasets", "tensorflow-datasets"), ("jaxlib", "jaxlib")):  # fmt: skip
        assert info[key] == versions.version(package), key
    assert info["lock"] in ("matches", None) or info["lock"].startswith("differs: ")
    json.dumps(info)  # env.json is JSON
