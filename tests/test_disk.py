"""A read-only or full disk under a run: one line, every earlier checkpoint intact, and the same command
resumes to the straight run's bits once the disk is fixed (the rest of the long-run guarantees:
test_longrun.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import snapshot_files
from test_longrun import MLP, cfg_of, sets, straight

from jaxgen import cli, train
from jaxgen.errors import EXIT_USAGE


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs of our own (root only), unmounted afterwards."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def _extended_reference(tmp_path: Path):
    short, spec = cfg_of("mlp", MLP, steps=20)
    long, _ = cfg_of("mlp", MLP, steps=40)
    straight(tmp_path, "mlp", short, spec, "ref")
    return short, long, spec, straight(tmp_path, "mlp", long, spec, "ref")


def test_a_read_only_workdir_is_one_line_and_resumes_bit_identical(tmp_path, tmpfs, capsys):
    short, long, spec, ref = _extended_reference(tmp_path)
    wd = tmpfs / "run"
    straight(tmpfs, "mlp", short, spec, "run")
    before = snapshot_files(wd)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    capsys.readouterr()
    try:
        code = cli.main(["train", "mlp", "--workdir", str(wd), *sets(long)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == EXIT_USAGE and len(err) == 1 and "make it writable" in err[0]
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert snapshot_files(wd) == before
    out = train.train(long, wd, spec, progress=False, make_plots=False)
    assert out["params_sha256"] == ref["params_sha256"]


def test_a_full_disk_is_one_line_keeps_old_checkpoints_and_resumes_bit_identical(tmp_path, tmpfs, capsys):
    short, long, spec, ref = _extended_reference(tmp_path)
    wd = tmpfs / "run"
    straight(tmpfs, "mlp", short, spec, "run")
    kept = {k: v for k, v in snapshot_files(wd).items() if k.startswith("checkpoints/")}
    stat = os.statvfs(tmpfs)
    filler = tmpfs / "filler"
    with open(filler, "wb") as f:  # leave 24 KiB: enough to start, not enough for a checkpoint
        f.truncate(max(0, stat.f_bavail * stat.f_frsize - 24 * 1024))
    with open(filler, "r+b") as f:  # tmpfs allocates on write
        os.posix_fallocate(f.fileno(), 0, os.path.getsize(filler))
    capsys.readouterr()
    code = cli.main(["train", "mlp", "--workdir", str(wd), *sets(long)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE and "intact" in err[-1], err
    assert not any(line.startswith("Traceback") for line in err)
    now = snapshot_files(wd)
    assert all(now.get(k) == v for k, v in kept.items())  # every earlier checkpoint file intact
    filler.unlink()
    out = train.train(long, wd, spec, progress=False, make_plots=False)
    assert out["params_sha256"] == ref["params_sha256"]
