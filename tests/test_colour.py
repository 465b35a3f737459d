"""Colour images end to end: training on arrays held in Python, and every bad colour input as one
`jaxgen: error:` line with nothing written (the readers' own cases are in tests/test_sources_folder.py)."""

import json

import numpy as np
import pytest
from PIL import Image
from test_tasks import colour_arrays

from jaxgen import cli, data, runs, train


def _folder(root, classes=("cats", "faces"), n=6, side=16):
    """A tiny image folder PATH/<class>/*.png of RGBA images."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (side, side, 4), dtype=np.uint8), "RGBA").save(
                root / c / f"{i}.png"
            )
    return root


def test_train_arrays_trains_evaluates_and_samples_colour_images_held_in_python(tmp_path, capsys):
    x, y = colour_arrays(24)
    sets = {"arch": "conv", "channels": (4, 8), "head": (8,), "steps": 4, "batch_size": 16, "ckpt_every": 4}
    wd = tmp_path / "run"
    summary = train.train_arrays("mlp", x, y, workdir=wd, class_names=("red", "green", "blue"), sets=sets,
                                 make_plots=False)  # fmt: skip
    assert summary["step"] == 4 and 0 <= summary["test_balanced_accuracy"] <= 1
    record = json.loads((wd / "resolved.json").read_text())
    assert record["data"] == f"npz:{wd / 'data.npz'}" and record["image_size"] == 8
    r = runs.restore_for_eval(wd)
    assert r.task.shape == (8, 8, 3) and r.dataset.class_names == ("red", "green", "blue")
    assert r.dataset.family == "colour"
    with pytest.raises(Exception, match="other images"):  # the run's data is the arrays it began with
        train.train_arrays("mlp", x[::-1], y, workdir=wd, sets=sets)


def test_a_split_too_large_for_the_device_is_one_line_before_anything_is_placed(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("JAXGEN_DEVICE_MEMORY", str(2_000_000))  # 2 MB: the 4,500 MNIST digits take 3.5
    wd = tmp_path / "run"
    assert cli.main(["train", "mlp", "--workdir", str(wd)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the training split of embedded is 0.00 GiB (4,500 images of 28x28x1)" in err[0]
    assert "lower --set image_size (now 28" in err[0]
    assert not wd.exists() or not any(wd.rglob("*.json"))


def _one_line(argv, needle, wd, capsys):
    assert cli.main([*argv[:2], "--workdir", str(wd), *argv[2:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxgen: error:") and needle in err[0], err
    assert not wd.exists() or not any(wd.rglob("*.json")), "nothing written before the error"


def test_bad_colour_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    one = _folder(tmp_path / "one", classes=("faces",))
    two = _folder(tmp_path / "two")
    empty = tmp_path / "empty"
    (empty / "faces").mkdir(parents=True)
    broken = _folder(tmp_path / "broken")
    (broken / "faces" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cases = [
        (["train", "mlp", "--data", f"folder:{one}"], "at least two classes"),
        (["train", "ae", "--data", f"folder:{empty}"], str(empty)),
        (["train", "ae", "--data", f"folder:{broken}"], "3.png"),
        (["train", "ae", "--data", f"folder:{two}", "--set", "image_size=32"], "image_size 32 is larger"),
        (["train", "gan", "--data", f"folder:{two}", "--set", "arch=conv", "--set", "image_size=14", "--set",
          "channels=8,16", "--set", "batch_size=8"], "cannot halve 14x14 images"),
    ]  # fmt: skip
    for i, (argv, needle) in enumerate(cases):
        _one_line(argv, needle, tmp_path / f"run{i}", capsys)


def test_dcgan_default_layout_follows_radford_from_a_4x4_grid():
    """Colour data: G doubles from 4x4 to the image (32: three stages 128 -> 64 -> 32 maps -> 3), D halves
    down to 4x4 with the same widths; 64x64 adds a stage (Radford et al.'s published layout)."""
    from jaxgen import configs

    x, y = colour_arrays(4, side=64)
    ds = data.from_arrays(x, y)
    for size, widths in ((32, (32, 64, 128)), (64, (32, 64, 128, 256))):
        cfg = configs.resolve(configs.make_config("gan", {"arch": "conv", "image_size": size}), ds)
        assert cfg.channels == widths and cfg.d_channels == widths, size
