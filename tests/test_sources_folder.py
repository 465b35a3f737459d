"""Image sources of any size and colour: folder:PATH (generated trees), npz:PATH, from_arrays / save_npz, the
area resize to image_size, what the data is (family, class names) and each bad input's one-line error."""

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxgen import data
from jaxgen.data import arrays, named
from jaxgen.errors import UserError

EMOJI = Path(__file__).resolve().parents[2] / "shared" / "data" / "emoji-google"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _png(path: Path, pixels: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, np.uint8), mode).save(path, fmt)
    return path


def _tree(root: Path, counts: dict[str, int], side: int = 4, mode: str = "RGB") -> Path:
    """root/<class>/<i>.png, each image filled with (class index, i)."""
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            value = np.array([c, i, 7][: 3 if mode == "RGB" else 1], np.uint8)
            _png(root / name / f"{i:03d}.png", np.broadcast_to(value, (side, side, len(value))).squeeze())
    return root


def _one_line_error(spec: str, match: str, **kw) -> str:
    with pytest.raises(UserError, match=match) as e:
        data.load(spec, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


# ---------------------------------------------------------------- folder


def test_folder_classes_split_and_order(tmp_path):
    root = _tree(tmp_path / "pics", {"zebra": 20, "Ant Eater": 1, "cat": 10})
    ds = data.load(f"folder:{root}")
    assert ds.class_names == ("Ant Eater", "cat", "zebra") and ds.num_classes == 3  # sorted folder names
    assert ds.shape == (4, 4, 3) and ds.info["shape"] == (4, 4, 3) and ds.family == "colour"
    assert ds.train["image"].dtype == np.uint8 and ds.train["label"].dtype == np.int32
    # 1 in 10 per class to the test split; the one-image class keeps its image for training.
    assert np.bincount(ds.test["label"], minlength=3).tolist() == [0, 1, 2]
    assert np.bincount(ds.train["label"], minlength=3).tolist() == [1, 9, 18]
    # Each image is filled with (its folder's index in the listing order, its file number): labels agree.
    names = {"zebra": 0, "Ant Eater": 1, "cat": 2}
    for split in (ds.train, ds.test):
        listing = np.array([names[ds.class_names[y]] for y in split["label"]])
        np.testing.assert_array_equal(split["image"][:, 0, 0, 0], listing)
    pairs = {tuple(p) for s in (ds.train, ds.test) for p in s["image"][:, 0, 0, :2].tolist()}
    assert len(pairs) == 31  # disjoint, nothing lost
    assert len(set(ds.train["label"][:5].tolist())) > 1  # shuffled: the files are sorted by class
    # The same arrays from a fresh read (a fixed split, whatever the run); cached while the files stay.
    again = data.load(f"folder:{root}")
    assert again.train["image"] is ds.train["image"]
    _png(root / "cat" / "999.png", np.zeros((4, 4, 3)))
    fresh = data.load(f"folder:{root}")
    assert fresh.train["image"] is not ds.train["image"] and len(fresh.train["label"]) == 29


def test_folder_train_test_layout(tmp_path):
    _tree(tmp_path / "train", {"b": 3, "a": 2})
    _tree(tmp_path / "test", {"a": 1, "c": 2})
    ds = data.load(f"folder:{tmp_path}")
    assert ds.class_names == ("a", "b", "c")  # the union, sorted
    assert sorted(ds.train["label"].tolist()) == [0, 0, 1, 1, 1]
    assert sorted(ds.test["label"].tolist()) == [0, 2, 2]
    only = tmp_path / "only-train"
    _tree(only / "train", {"x": 2})
    ds = data.load(f"folder:{only}")
    assert ds.test is None and len(ds.train["label"]) == 2
    with pytest.raises(UserError, match=r"has no test split: add a test/<class>/ folder"):
        data.split(ds, "test")
    _tree(tmp_path / "only-test" / "test", {"x": 2})
    assert data.load(f"folder:{tmp_path / 'only-test'}").train is None


def test_folder_transparency_is_composited_onto_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (200, 100, 50, 128)  # half transparent
    rgba[1, 1] = (10, 20, 30, 255)  # opaque
    _png(tmp_path / "a" / "x.png", rgba)
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 0], la[..., 1] = 40, 64
    _png(tmp_path / "b" / "y.png", la, "LA")
    ds = data.load(f"folder:{tmp_path}")
    assert ds.shape == (4, 4, 3)
    x = ds.train["image"][ds.train["label"] == 0][0].astype(int)
    a = 128 / 255
    np.testing.assert_allclose(x[0, 0], np.array([200, 100, 50]) * a + 255 * (1 - a), atol=1)
    assert x[1, 1].tolist() == [10, 20, 30] and x[3, 3].tolist() == [255, 255, 255]  # clear: white
    y = ds.train["image"][ds.train["label"] == 1][0].astype(int)
    assert abs(y[0, 0, 0] - (40 * 64 + 255 * 191) / 255) <= 1 and (y[..., 0] == y[..., 2]).all()


def test_folder_grey_stays_one_channel_and_mixed_becomes_rgb(tmp_path):
    _png(tmp_path / "g" / "a" / "1.png", np.full((5, 5), 9), "L")
    _png(tmp_path / "g" / "b" / "2.png", np.full((5, 5), 200), "L")
    ds = data.load(f"folder:{tmp_path / 'g'}")
    assert ds.shape == (5, 5, 1) and ds.family == "grey"
    _png(tmp_path / "g" / "b" / "3.png", np.full((5, 5, 3), (1, 2, 3)))
    ds = data.load(f"folder:{tmp_path / 'g'}")
    assert ds.shape == (5, 5, 3) and ds.family == "colour"
    grey = np.concatenate([ds.train["image"], ds.test["image"]])
    assert any((im == 9).all() for im in grey)  # the grey image replicated into R, G and B


def test_folder_mixed_sizes_crop_to_the_smallest_square(tmp_path):
    wide = np.tile(np.arange(12, dtype=np.uint8)[None, :, None] * 10, (6, 1, 3))  # 12 wide, 6 high
    _png(tmp_path / "a" / "wide.png", wide)
    _png(tmp_path / "b" / "big.png", np.full((8, 8, 3), 50))
    ds = data.load(f"folder:{tmp_path}")
    assert ds.shape == (6, 6, 3)
    images = {int(y): im for y, im in zip(ds.train["label"], ds.train["image"], strict=True)}
    assert images[0][0, :, 0].tolist() == [30, 40, 50, 60, 70, 80]  # the centre 6 columns, not resized
    assert (images[1] == 50).all()  # 8x8 -> 6x6 by area: a flat image stays flat
    msg = _one_line_error(
        f"folder:{tmp_path}", "image_size 7 is larger than the smallest image", image_size=7
    )
    assert "(12x6)" in msg and "(at most 6)" in msg


def test_folder_image_size_area_resize(tmp_path):
    blocks = np.kron(np.array([[10, 20], [30, 42]]), np.ones((2, 2)))  # 4x4: four 2x2 blocks
    blocks[0, 0] = 14  # block (0, 0) is now 14, 10, 10, 10: mean 11
    _png(tmp_path / "a" / "x.png", blocks, "L")
    ds = data.load(f"folder:{tmp_path}", image_size=2)
    assert ds.shape == (2, 2, 1)
    assert ds.train["image"][0, ..., 0].tolist() == [[11, 20], [30, 42]]
    assert data.load(f"folder:{tmp_path}", image_size=1).train["image"].item() == round(blocks.mean())
    msg = _one_line_error(f"folder:{tmp_path}", "image_size 8 is larger than the 4x4 images", image_size=8)
    assert msg.endswith(f"of folder:{tmp_path}: lower --set image_size (at most 4)")


def test_folder_reads_jpeg_of_any_case(tmp_path):
    _png(tmp_path / "a" / "photo.JPG", np.full((9, 9, 3), (200, 40, 90)), fmt="JPEG")
    _png(tmp_path / "b" / "other.jpeg", np.full((9, 9, 3), 128), fmt="JPEG")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    ds = data.load(f"folder:{tmp_path}")
    assert ds.shape == (9, 9, 3) and len(ds.train["label"]) == 2
    first = ds.train["image"][ds.train["label"] == 0][0]
    np.testing.assert_allclose(first[4, 4], (200, 40, 90), atol=4)  # JPEG is lossy


def test_folder_bad_inputs_are_one_line(tmp_path):
    _one_line_error(f"folder:{tmp_path / 'nope'}", r"no such folder: point folder:PATH at PATH/<class>/")
    (tmp_path / "empty").mkdir()
    _one_line_error(
        f"folder:{tmp_path / 'empty'}", r"has no class subfolders: put the images in PATH/<class>/"
    )
    (tmp_path / "noimages" / "cat").mkdir(parents=True)
    (tmp_path / "noimages" / "cat" / "a.txt").write_text("x")
    _one_line_error(f"folder:{tmp_path / 'noimages'}", r"has no \.png/\.jpg/\.jpeg images .*\(cat\)")
    bad = tmp_path / "bad"
    _tree(bad, {"a": 2})
    (bad / "a" / "002.png").write_bytes(b"not a png at all")
    msg = _one_line_error(f"folder:{bad}", "cannot read image")
    assert str(bad / "a" / "002.png") in msg and "replace or remove that file" in msg
    cut = tmp_path / "cut"
    good = _png(cut / "a" / "x.png", np.random.default_rng(0).integers(0, 256, (32, 32, 3)))
    good.write_bytes(good.read_bytes()[:300])  # a truncated PNG: its header reads, its pixels do not
    assert str(good) in _one_line_error(f"folder:{cut}", "cannot read image")


@pytest.mark.skipif(not EMOJI.is_dir(), reason="shared/data/emoji-google not beside the repo")
def test_emoji_folder():
    start = time.perf_counter()
    ds = data.load(f"folder:{EMOJI}")
    took = time.perf_counter() - start
    print(f"folder:{EMOJI} read in {took:.2f} s")
    assert len(ds.train["label"]) == 3383 and len(ds.test["label"]) == 398
    assert ds.shape == (64, 64, 3) and ds.family == "colour" and ds.num_classes == 9
    assert ds.class_names == tuple(sorted(p.name for p in (EMOJI / "train").iterdir()))
    assert "people_body" in ds.class_names and ds.train["image"].max() == 255
    assert (ds.train["image"][:, 0, 0] == 255).mean() > 0.9  # transparent corners became white
    small = data.load(f"folder:{EMOJI}", image_size=32)
    assert small.shape == (32, 32, 3)
    _one_line_error(
        f"folder:{EMOJI}", r"image_size 96 is larger than the 64x64 images.*at most 64", image_size=96
    )


# ---------------------------------------------------------------- npz, from_arrays, save_npz


def test_npz_with_and_without_labels_and_test(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 6, 6), np.uint8)
    y = np.arange(40) % 4
    path = data.save_npz(tmp_path / "d.npz", x, y, class_names=["a", "b", "c", "d"])
    ds = data.load(f"npz:{path}")
    assert ds.shape == (6, 6, 1) and ds.class_names == ("a", "b", "c", "d") and ds.family == "grey"
    assert len(ds.test["label"]) == 4 and np.bincount(ds.test["label"]).tolist() == [1, 1, 1, 1]
    rows = {r.tobytes() for r in ds.train["image"]}
    assert not any(r.tobytes() in rows for r in ds.test["image"])
    np.savez(tmp_path / "plain.npz", x=x)  # no labels: one class
    ds = data.load(f"npz:{tmp_path / 'plain.npz'}")
    assert ds.num_classes == 1 and ds.class_names == ("0",) and len(ds.test["label"]) == 4
    xt = np.zeros((3, 6, 6, 3), np.uint8)
    np.savez(tmp_path / "split.npz", x=np.zeros((5, 6, 6, 3), np.uint8), y=[0, 1, 2, 1, 0], x_test=xt,
             y_test=np.array([2, 2, 0], np.int64))  # fmt: skip
    ds = data.load(f"npz:{tmp_path / 'split.npz'}")
    assert ds.family == "colour" and len(ds.train["label"]) == 5 and ds.test["label"].tolist() == [2, 2, 0]
    assert ds.class_names == ("0", "1", "2") and ds.test["label"].dtype == np.int32


@pytest.mark.parametrize(
    "arrays_, match",
    [
        ({"x": np.zeros((100, 8, 8), np.float32)}, r"x is float32\[100, 8, 8\], need uint8 \[N, H, W\] or "
         r"\[N, H, W, C\]: convert with \(x \* 255\)\.round\(\)\.astype\(np\.uint8\)"),
        ({"x": np.zeros((10, 64), np.uint8)}, r"x is uint8\[10, 64\].*reshape it"),
        ({"x": np.zeros((10, 8, 8, 4), np.uint8)}, r"x has 4 channels, need 1 \(grey\) or 3"),
        ({"x": np.zeros((10, 8, 8), np.uint8), "y": np.zeros(9, int)}, r"y has 9 labels for 10 images"),
        ({"x": np.zeros((10, 8, 8), np.uint8), "y": np.zeros(10)}, r"y is float64\[10\], need integer"),
        ({"images": np.zeros((10, 8, 8), np.uint8)}, r"holds images: the arrays are x \(images\), y"),
        ({"x": np.zeros((4, 8, 8), np.uint8), "y": [0, 1, 2, 2], "class_names": np.array(["a", "b"])},
         r"2 class_names for labels up to 2"),
        ({"x": np.zeros((4, 8, 8), np.uint8), "y": [0, 1, 0, 1], "x_test": np.zeros((2, 8, 8), np.uint8)},
         r"x_test has no y_test"),
        ({"x": np.zeros((4, 8, 8), np.uint8), "x_test": np.zeros((2, 7, 8), np.uint8)},
         r"x_test images are 7x8x1"),
    ],
)  # fmt: skip
def test_npz_bad_arrays_are_one_line(tmp_path, arrays_, match):
    np.savez(tmp_path / "bad.npz", **arrays_)
    msg = _one_line_error(f"npz:{tmp_path / 'bad.npz'}", match)
    assert msg.startswith(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_missing_or_unreadable(tmp_path):
    _one_line_error(f"npz:{tmp_path / 'none.npz'}", "no such file")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken")
    _one_line_error(
        f"npz:{tmp_path / 'junk.npz'}", r"cannot read it .*: write it with jaxgen\.data\.save_npz"
    )
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    _one_line_error(f"npz:{tmp_path / 'objects.npz'}", "cannot read it")


def test_from_arrays_checks_and_leaves_the_callers_arrays_alone(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (20, 8, 8, 3), np.uint8)
    y = np.arange(20) % 2
    xt = x[:4].copy()
    ds = data.from_arrays(x, y, class_names=("no", "yes"), x_test=xt, y_test=y[:4], name="mine")
    assert ds.spec == "mine" and ds.shape == (8, 8, 3) and ds.family == "colour" and ds.name_of(1) == "yes"
    np.testing.assert_array_equal(ds.train["image"], x)
    x[0, 0, 0, 0] = 1  # still the caller's to change; the Dataset's copy is read-only
    xt[0] = 0
    assert not ds.train["image"].flags.writeable
    assert data.from_arrays(x[..., :1], image_size=4).shape == (4, 4, 1)
    with pytest.raises(UserError, match=r"mine: x is int64\[3, 2, 2\].*x\.astype\(np\.uint8\)"):
        data.from_arrays(np.zeros((3, 2, 2), int), name="mine")
    with pytest.raises(UserError, match="save_npz.*y has 3 labels for 20 images"):
        data.save_npz(tmp_path / "z.npz", x, [0, 1, 0])
    assert not (tmp_path / "z.npz").exists()
    # save_npz writes what npz:PATH reads back unchanged (the same carved split, names included).
    path = data.save_npz(tmp_path / "run-data", x, y, class_names=["no", "yes"])
    assert path == tmp_path / "run-data" and path.is_file()
    back, fresh = data.load(f"npz:{path}"), data.from_arrays(x, y, class_names=["no", "yes"])
    for split in ("train", "test"):
        for k in ("image", "label"):
            np.testing.assert_array_equal(getattr(back, split)[k], getattr(fresh, split)[k])
    assert back.class_names == ("no", "yes")


def test_area_resize_of_arrays_matches_pil_box():
    x = np.random.default_rng(2).integers(0, 256, (3, 9, 7, 3), np.uint8)
    out = arrays.square(x, 4)  # crop 7x7 (rows 1..7), then a non-integer factor
    assert out.shape == (3, 4, 4, 3)
    for i in range(3):
        box = Image.fromarray(x[i, 1:8]).resize((4, 4), Image.Resampling.BOX)
        np.testing.assert_array_equal(out[i], np.asarray(box))  # as folder:PATH images are resized
    assert arrays.square(x, None).shape == (3, 7, 7, 3)
    flat = np.full((2, 28, 28, 1), 77, np.uint8)
    assert (arrays.square(flat, 20) == 77).all() and arrays.square(flat, 28) is flat


def test_holdout_is_fixed_stratified_and_keeps_singletons():
    labels = np.array([0] * 25 + [1] + [2] * 2 + [3] * 10)
    train, test = arrays.holdout(labels)
    assert np.bincount(labels[test], minlength=4).tolist() == [3, 0, 1, 1]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    again = arrays.holdout(labels)
    np.testing.assert_array_equal(again[1], test)


# ---------------------------------------------------------------- what the data is


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist (absent here)")
def test_official_fashion_files_are_clothes_by_any_road(tmp_path):
    ds = data.load(f"idx:{FASHION}")
    assert ds.family == "clothes" and ds.class_names == named.CLOTHES and ds.shape == (28, 28, 1)
    assert ds.train["image"].shape == (60000, 28, 28, 1)
    test = data.read_idx(FASHION / "t10k-images-idx3-ubyte.gz")
    labels = data.read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(ds.test["image"][..., 0], test)  # the pixels as the file stores them
    mine = data.from_arrays(test[:2000], labels[:2000], x_test=test[2000:2100], y_test=labels[2000:2100])
    assert mine.family == "clothes" and mine.name_of(9) == "Ankle boot"  # known by its labels
    assert data.load(f"idx:{FASHION}", image_size=14).family == "clothes"
