"""jaxgen.data's batching (batch_at, epoch and chunk shuffles, bit for bit) and augmentation (affine warps,
mirrors, random erasing, DiffAugment's translate and cutout)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.data import batches
from jaxgen.errors import UserError

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
    images = np.zeros((batch, 28, 28, 1), np.uint8)
    images[:, 12:16, 12:16] = 200  # a square well away from the border
    return jnp.asarray(images)


def test_affine_images_with_zero_ranges_is_identity():
    images = _blobs(4)
    out = batches.affine_images(jax.random.key(0), images, 0.0, 0.0, 0.0)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, np.asarray(images, np.float32))


def test_affine_images_mirrors_only_skip_the_warp_bit_for_bit():
    """Clothes' augmentation (mirrors, no shift/rotation/zoom) returns the mirrored images without the
    bilinear warp: the same bits as the warp gives when its ranges are traced values it cannot skip."""
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)), jnp.float32)
    skipped = batches.affine_images(jax.random.key(2), images, 0.0, 0.0, 0.0, 0.5)
    warped = jax.jit(batches.affine_images, static_argnums=5)(jax.random.key(2), images, 0.0, 0.0, 0.0, 0.5)
    np.testing.assert_array_equal(skipped, warped)
    assert not np.array_equal(skipped, images)  # some were mirrored


def test_random_erase_fills_one_rectangle_per_chosen_image():
    """Random erasing: about `prob` of the images get one axis-aligned rectangle of noise, its area in
    [2 %, 40 %] of the image (up to rounding), the rest of every image untouched; prob 0 changes nothing."""
    images = jnp.zeros((1000, 28, 28, 1), jnp.float32)
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
    out = np.asarray(batches.translate(jax.random.key(0), jnp.asarray(images[..., None]), 3))
    out = out.reshape(500, 28, 28)
    seen = set()
    for img, src in zip(out[:200], images[:200], strict=True):
        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if np.array_equal(img, np.roll(src, (dy, dx), (0, 1)))]  # fmt: skip
        assert len(found) == 1  # the 16x16 block stays inside, so a roll is the zero-fill shift
        seen.add(found[0])
    assert len(seen) == 49  # all 7 x 7 offsets occur
    x = jnp.asarray(images[:8, :, :, None])
    grad = jax.grad(lambda v: (batches.translate(jax.random.key(1), v, 2) ** 2).sum())(x)
    np.testing.assert_allclose(grad, 2 * x)  # the block never leaves the frame: every pixel counts once
    np.testing.assert_array_equal(batches.translate(jax.random.key(0), x, 0), x)


def test_cutout_zeroes_one_square_per_image():
    """DiffAugment's cutout: one size x size square (clipped at the border) set to zero in every image,
    the rest untouched."""
    images = jnp.ones((300, 28, 28, 1), jnp.float32)
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
    assert out.shape == (64, 28, 28, 1)
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


def test_augmentations_move_every_channel_of_any_image_size_alike():
    """Colour images of any size (here 20 x 32 x 3): a warp, a translation, a cutout and an erase act on
    the three channels alike (the channels stay copies of each other when they start as copies)."""
    rng = np.random.default_rng(3)
    grey = rng.random((8, 20, 32, 1)).astype(np.float32)
    colour = jnp.asarray(np.repeat(grey, 3, axis=3) * np.array([1.0, 0.5, 0.25], np.float32))
    key = jax.random.key(4)
    outs = {
        "affine": batches.affine_images(key, colour, 2.0, 10.0, 0.1, 0.5),
        "translate": batches.translate(key, colour, 3),
        "cutout": batches.cutout(key, colour, 6),
        "erase": batches.random_erase(key, colour, 1.0),
    }
    for name, out in outs.items():
        out = np.asarray(out)
        assert out.shape == (8, 20, 32, 3), name
        if name != "erase":  # the others are per-pixel linear maps shared by the channels
            np.testing.assert_allclose(out[..., 1], 0.5 * out[..., 0], atol=1e-6, err_msg=name)
            np.testing.assert_allclose(out[..., 2], 0.25 * out[..., 0], atol=1e-6, err_msg=name)
        else:  # the erased rectangle is the same in every channel
            changed = out != np.asarray(colour)
            np.testing.assert_array_equal(changed[..., 0], changed[..., 1])
    one = np.asarray(batches.affine_images(key, colour[..., :1], 2.0, 10.0, 0.1, 0.5))
    np.testing.assert_allclose(np.asarray(outs["affine"])[..., :1], one, atol=1e-6)  # C=1 is the same warp
    np.testing.assert_array_equal(batches.mirror(colour), np.asarray(colour)[:, :, ::-1, :])
