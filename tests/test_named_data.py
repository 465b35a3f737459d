"""Named sources (`--data fashion`, `--data mnist`), their class names, the validation split, defaults
chosen for clothes or digits, and the plain log of a redirected run. Fake folder trees, no real files."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxgen import cli, data, tasks
from jaxgen.data import batches, named
from jaxgen.errors import UserError
from jaxgen.plots import common

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _idx_folder(
    folder: Path, n_train: int = 300, n_test: int = 100, train: bool = True, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"t10k": n_test, **({"train": n_train} if train else {})}
    for prefix, n in splits.items():
        data.write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        )
        data.write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return folder


@pytest.fixture
def no_system_folders(monkeypatch, tmp_path):
    """Only $JAXGEN_DATA is searched (the machine's /usr/share copy and TFDS are hidden)."""
    for name, src in named.NAMED.items():
        monkeypatch.setitem(named.NAMED, name, named.dataclasses.replace(src, system=()))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no-tfds"))
    monkeypatch.delenv("JAXGEN_DATA", raising=False)


def test_finder_looks_in_jaxgen_data_then_system_folders(no_system_folders, monkeypatch, tmp_path):
    root = tmp_path / "jd"
    _idx_folder(root / "fashion-mnist")
    monkeypatch.setenv("JAXGEN_DATA", str(root))
    ds = data.load("fashion")
    assert ds.spec == "fashion" and ds.family == "clothes" and len(ds.train["label"]) == 300
    assert ds.class_names[7] == "Sneaker" and ds.name_of(9) == "Ankle boot"
    assert ds.info["found"] == f"idx:{root / 'fashion-mnist'}"
    # A system folder is the fallback when $JAXGEN_DATA has no copy.
    system = _idx_folder(tmp_path / "usr-share-fashion", n_train=200)
    monkeypatch.setitem(
        named.NAMED, "fashion", named.dataclasses.replace(named.NAMED["fashion"], system=(str(system),))
    )
    monkeypatch.setenv("JAXGEN_DATA", str(tmp_path / "empty"))
    assert len(data.load("fashion").train["label"]) == 200
    _idx_folder(root / "mnist")
    monkeypatch.setenv("JAXGEN_DATA", str(root))
    digits = data.load("mnist")
    assert digits.family == "digits" and digits.class_names == tuple("0123456789")


def test_missing_named_source_is_one_line_naming_the_fix(no_system_folders, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("JAXGEN_DATA", str(tmp_path))
    with pytest.raises(UserError) as err:
        data.load("fashion")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "fashion-mnist") in msg and "\n" not in msg
    _idx_folder(tmp_path / "mnist", train=False)  # the test files only
    with pytest.raises(UserError, match="has no training split: add train-images-idx3-ubyte.gz"):
        data.load("mnist")
    wd = tmp_path / "run"
    assert cli.main(["train", "mlp", "--workdir", str(wd), "--data", "fashion"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not wd.exists()  # nothing written


def test_truncated_named_file_is_one_line(no_system_folders, monkeypatch, tmp_path):
    folder = _idx_folder(tmp_path / "fashion-mnist")
    raw = folder / "train-images-idx3-ubyte"
    data.write_idx(raw, np.zeros((300, 28, 28), np.uint8))
    (folder / "train-images-idx3-ubyte.gz").unlink()
    raw.write_bytes(raw.read_bytes()[:-100])
    monkeypatch.setenv("JAXGEN_DATA", str(tmp_path))
    with pytest.raises(UserError, match="get it again"):
        data.load("fashion")


def test_validation_split_is_fixed_disjoint_and_checked():
    ds = data.load("embedded")
    a, b = data.with_validation(ds, 500), data.with_validation(ds, 500)
    assert len(a.train["label"]) == 4000 and len(a.val["label"]) == 500
    np.testing.assert_array_equal(a.val["image"], b.val["image"])  # the same in every run
    rows = {r.tobytes() for r in np.asarray(a.train["image"])}
    assert not any(r.tobytes() in rows for r in np.asarray(a.val["image"]))  # never overlapping
    both = np.concatenate([a.train["image"], a.val["image"]])
    assert sorted(map(bytes, both)) == sorted(map(bytes, np.asarray(ds.train["image"])))  # nothing lost
    assert data.with_validation(ds, 0) is ds
    with pytest.raises(UserError, match="val 4500 must be below the 4500 training examples"):
        data.with_validation(ds, 4500)
    with pytest.raises(UserError, match="has no validation split"):
        data.split(ds, "val")


def test_val_scores_at_checkpoints_and_too_large_val_is_refused(tmp_path, capsys):
    wd = tmp_path / "run"
    argv = ["train", "mlp", "--workdir", str(wd), "--no-plots", "--no-progress"]
    tiny = ["--set", "hidden=16", "--set", "steps=10", "--set", "ckpt_every=10", "--set", "log_every=5"]
    assert cli.main([*argv, *tiny, "--set", "val=4500"]) == 2 and not wd.exists()
    assert "val 4500 must be below" in capsys.readouterr().err
    assert cli.main([*argv, *tiny, "--set", "val=500"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["val_n"] == 500 and summary["test_n"] == 500
    assert json.loads((wd / "resolved.json").read_text())["val"] == 500


def test_defaults_chosen_for_clothes_and_digits(no_system_folders, monkeypatch, tmp_path):
    _idx_folder(tmp_path / "fashion-mnist", n_train=1280)
    monkeypatch.setenv("JAXGEN_DATA", str(tmp_path))
    clothes, digits = data.load("fashion"), data.load("embedded")
    for name in ("mlp", "ae"):
        cfg = tasks.make_config(name)
        c, d = tasks.resolve(cfg, clothes), tasks.resolve(cfg, digits)
        shift = {"mlp": 0.0, "ae": 2.0}[name]  # chosen on the validation split for the MLP (docs/fashion.md)
        assert (c.hflip, c.max_rotate, c.max_scale, c.max_shift) == (0.5, 0.0, 0.0, shift)
        assert (d.hflip, d.max_rotate, d.max_scale, d.max_shift) == (0.0, 10.0, 0.1, 2.0)
        epochs = {"mlp": 90, "ae": 20}[name]
        assert c.steps == int(np.ceil(epochs * 1280 / cfg.batch_size))  # epochs of this data
        assert d.steps == {"mlp": 2000, "ae": 10000}[name]  # the sample's measured choice
        assert tasks.resolve(c, clothes) == c  # idempotent
        asked = tasks.make_config(name, {"hflip": 0.0, "steps": 7})
        assert tasks.resolve(asked, clothes).hflip == 0.0 and tasks.resolve(asked, clothes).steps == 7


def test_hflip_mirrors_and_leaves_other_draws_unchanged():
    x = np.arange(2 * 784, dtype=np.float32).reshape(2, 28, 28, 1) % 255
    out = np.asarray(batches.affine_images(jax.random.key(0), x, 0.0, 0.0, 0.0, hflip=1.0))
    np.testing.assert_allclose(out, x[:, :, ::-1], atol=1e-4)
    moved = batches.affine_images(jax.random.key(3), x, 2.0, 10.0, 0.1)
    np.testing.assert_array_equal(
        moved, batches.affine_images(jax.random.key(3), x, 2.0, 10.0, 0.1, hflip=0.0)
    )


def test_figures_name_classes(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(common, "image_grid", lambda images, path, titles=None, cols=8: seen.update(t=titles))
    names = named.CLOTHES
    common.prediction_grid(np.zeros((2, 784)), np.array([7, 9]), np.array([7, 5]), tmp_path / "p.png", names)
    assert seen["t"] == ["Sneaker", "Sandal≠Ankle boot"]


def test_redirected_run_logs_plain_lines(tmp_path):
    """Progress bars on a terminal only: a redirected run writes one plain line per chunk."""
    cmd = [sys.executable, "-m", "jaxgen", "train", "mlp", "--workdir", str(tmp_path / "r"), "--no-plots"]
    cmd += ["--set", "hidden=16", "--set", "steps=30", "--set", "ckpt_every=30", "--set", "log_every=10"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mlp step ")]
    assert len(lines) == 3 and "\r" not in proc.stderr, proc.stderr
    assert (
        lines[-1].startswith("mlp step 30/30 epoch ")
        and "samples/s" in lines[-1]
        and lines[-1].endswith("left")
    )
    assert " loss " in lines[0] and " accuracy " in lines[0]


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist (absent here)")
def test_real_fashion_files_load_with_their_classes():
    ds = data.load("fashion")
    assert ds.train["image"].shape == (60000, 28, 28, 1) and ds.test["image"].shape == (10000, 28, 28, 1)
    assert ds.family == "clothes" and ds.shape == (28, 28, 1) and ds.info["found"] == f"idx:{REAL_FASHION}"
    assert (
        np.bincount(ds.train["label"]).tolist() == [6000] * 10
        and ds.name_of(int(ds.test["label"][0])) == "Ankle boot"
    )
