"""The house's layering, kept by tools: import-linter's layers contract (pyproject.toml) holds and catches
an upward import; the CLI's edge answers without importing JAX, flax or orbax."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
HEAVY = ("jax", "flax", "optax", "orbax")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root)}
    )


@pytest.mark.skipif(not LINT.exists(), reason="import-linter not installed (pip install -e '.[test]')")
def test_layers_hold_and_an_upward_import_breaks_them(tmp_path):
    shutil.copytree(REPO / "jaxgen", tmp_path / "jaxgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    ok = _lint(tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    common = tmp_path / "jaxgen" / "plots" / "common.py"
    common.write_text(common.read_text() + "\n\ndef _up():\n    from jaxgen import train  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0 and "jaxgen.plots.common -> jaxgen.train" in broken.stdout


PROBE = """
import json, sys
from jaxgen import cli
try:
    status = cli.main({argv!r})
except SystemExit as exit:  # --version and --help exit through argparse
    status = exit.code
print(json.dumps({{"status": status, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["train", "--help"],
        ["train", "gan", "--help"],
        ["config", "ae"],
        ["train", "mlp", "--workdir", "w", "--set", "lr=abc"],
        ["train", "mlp", "--workdir", "w", "--set", "colour=red"],
        ["train", "ae", "--workdir", "w", "--data", "nope:1"],
        ["train", "gan", "--workdir", "w", "--set", "activation=swoosh"],
        ["eval", "no/such/run"],
        ["sample", "no/such/run", "--out", "x.npy"],
    ],
    ids=" ".join,
)
def test_cli_edge_answers_without_jax(argv, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"{argv} imported {out['heavy']}"
    assert out["status"] in (0, 2), proc.stderr
    if out["status"] == 2:  # a mistake: one line naming the fix, no traceback
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("jaxgen: error: "), proc.stderr


def test_every_lazy_jaxgen_module_is_also_a_visible_import():
    """jaxgen.lazy hides an import from import-linter; each lazy("jaxgen.X") must sit beside a
    TYPE_CHECKING import of X in the same file, so the layers contract still sees the arrow."""
    import re

    for path in (REPO / "jaxgen").rglob("*.py"):
        text = path.read_text()
        for target in re.findall(r'lazy\("(jaxgen[\w.]*)"\)', text):
            package, _, name = target.rpartition(".")
            visible = f"from {package} import {name}" in text or f"import {target}" in text
            assert visible, f"{path.relative_to(REPO)}: lazy({target!r}) has no TYPE_CHECKING import"
