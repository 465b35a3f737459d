"""Pure on-device batching: the batch of step s is a function of (data_key, s) alone, each epoch's shuffle
is computed once (EpochShuffles), images stay uint8 on the device and are normalised and augmented inside
the jitted step."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import UserError


def normalise(images: jax.Array) -> jax.Array:
    """uint8 pixels (kept as uint8 on the device) -> float32 in [0, 1], inside the jitted step; float
    inputs (toy points) are used as they are."""
    if jnp.issubdtype(images.dtype, jnp.integer):
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


def _sizes(arrays: dict[str, jax.Array], batch_size: int) -> tuple[int, int]:
    """(examples, steps per epoch) of `arrays` at `batch_size`, checked."""
    sizes = {int(v.shape[0]) for v in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"batch_at needs arrays with one common leading size, got {sorted(sizes)}")
    n = sizes.pop()
    if batch_size > n:
        raise UserError(f"batch_size {batch_size} exceeds the {n} training examples; lower --set batch_size")
    if batch_size < 1:
        raise UserError(f"batch_size must be positive, got {batch_size}; fix --set batch_size")
    return n, n // batch_size  # static: shapes are known at trace time


def epoch_permutations(key: jax.Array, first_epoch: jax.Array | int, count: int, n: int) -> jax.Array:
    """The shuffles of epochs first_epoch .. first_epoch + count - 1, int32[count, n]; epoch e's is
    permutation(fold_in(key, e), n), the same whichever step asks for it."""
    epochs = jnp.asarray(first_epoch) + jnp.arange(count)
    return jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), n))(epochs)


def batch_from(
    arrays: dict[str, jax.Array], perms: jax.Array, first_epoch: jax.Array, step: jax.Array, batch_size: int
) -> dict[str, jax.Array]:
    """Batch number STEP sliced from precomputed epoch shuffles (rows first_epoch, first_epoch + 1, ...)."""
    n, steps_per_epoch = _sizes(arrays, batch_size)
    step = jnp.asarray(step)
    perm = jax.lax.dynamic_index_in_dim(perms, step // steps_per_epoch - first_epoch, keepdims=False)
    idx = jax.lax.dynamic_slice_in_dim(perm, (step % steps_per_epoch) * batch_size, batch_size)
    return {k: v[idx] for k, v in arrays.items()}


def chunk_shuffles(
    arrays: dict[str, jax.Array], key: jax.Array, first_step: jax.Array, batch_size: int, length: int
) -> tuple[jax.Array, jax.Array]:
    """(perms, first_epoch) for `batch_from` over steps first_step .. first_step + length - 1: each epoch's
    shuffle computed once for the chunk instead of once per step."""
    n, steps_per_epoch = _sizes(arrays, batch_size)
    first_epoch = jnp.asarray(first_step) // steps_per_epoch
    return epoch_permutations(key, first_epoch, _epochs_touched(length, steps_per_epoch), n), first_epoch


def _epochs_touched(length: int, steps_per_epoch: int) -> int:
    """Epoch rows a chunk of `length` steps gets: at most the epochs such a run of steps can touch (a static
    shape, whichever step the chunk starts at)."""
    return min(length, (length - 1) // steps_per_epoch + 2)


class EpochShuffles:
    """`chunk_shuffles` for a driver that knows its step on the host: each epoch's shuffle is computed once
    (a sort of the whole training set), kept on the device while chunks still need it, and stacked into
    the rows a chunk needs. With 60,000 images, computing them inside every 100-step chunk cost 43 ms a
    chunk on a 2-core CPU (about a third of the chunk); batches stay chunk_shuffles', bit for bit."""

    def __init__(self, arrays: dict[str, jax.Array], key: jax.Array, batch_size: int, sharding: Any = None):
        self.n, self.steps_per_epoch = _sizes(arrays, batch_size)
        self.key = key
        n = self.n
        self._one = jax.jit(lambda key, e: epoch_permutations(key, e, 1, n)[0], out_shardings=sharding)
        self._stack = jax.jit(lambda *rows: jnp.stack(rows), out_shardings=sharding)
        self._cache: dict[int, jax.Array] = {}

    def for_chunk(self, first_step: int, length: int) -> tuple[jax.Array, np.int32]:
        """(perms, first_epoch) for steps first_step .. first_step + length - 1, as chunk_shuffles gives."""
        first_epoch = int(first_step) // self.steps_per_epoch
        epochs = range(first_epoch, first_epoch + _epochs_touched(length, self.steps_per_epoch))
        for e in [e for e in self._cache if e < first_epoch]:  # no later chunk asks for an earlier epoch
            del self._cache[e]
        for e in epochs:
            if e not in self._cache:
                self._cache[e] = self._one(self.key, np.int32(e))
        return self._stack(*(self._cache[e] for e in epochs)), np.int32(first_epoch)


def batch_at(
    arrays: dict[str, jax.Array], key: jax.Array, step: jax.Array | int, batch_size: int
) -> dict[str, jax.Array]:
    """Batch number STEP: a fresh permutation per epoch (from KEY), remainder dropped; pure and jit-able.

    The driver computes each epoch's shuffle once (EpochShuffles, sliced by batch_from) instead of once
    per step; both give these batches bit for bit.
    """
    n, steps_per_epoch = _sizes(arrays, batch_size)
    epoch = jnp.asarray(step) // steps_per_epoch
    return batch_from(arrays, epoch_permutations(key, epoch, 1, n), epoch, step, batch_size)


def mirror(images: jax.Array) -> jax.Array:
    """Each image [B, H, W, C] mirrored left to right (the clothes' augmentation, and the classifier's
    second look at test time: tta=mirror)."""
    return images[:, :, ::-1, :]


def affine_images(
    key: jax.Array,
    images_BxHxWxC: jax.Array,
    max_shift: float,
    max_rotate: float,
    max_scale: float,
    hflip: float = 0.0,
) -> jax.Array:
    """Random per-image rotation (degrees), isotropic scale (1 +- max_scale), translation (pixels) and,
    with probability `hflip`, a left-right mirror (clothes; never digits), of images [B, H, W, C] of any
    size and channel count (every channel moved alike).

    Bilinear resampling about the image centre with zero fill; returns float32 in the input's range.
    """
    b, h, w, _ = images_BxHxWxC.shape
    rot_key, scale_key, shift_key = jax.random.split(key, 3)
    theta_B = jnp.deg2rad(jax.random.uniform(rot_key, (b,), minval=-max_rotate, maxval=max_rotate))
    scale_B = 1.0 + jax.random.uniform(scale_key, (b,), minval=-max_scale, maxval=max_scale)
    shift_Bx2 = jax.random.uniform(shift_key, (b, 2), minval=-max_shift, maxval=max_shift)
    centre_2x1 = jnp.array([[(h - 1) / 2.0], [(w - 1) / 2.0]], jnp.float32)
    rows, cols = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )
    grid_2xP = jnp.stack([rows.ravel(), cols.ravel()]) - centre_2x1

    def warp(img_HxWxC, theta, scale, shift):
        # Inverse map: the output pixel p samples the input at R(-theta) (p - shift) / scale.
        c, s = jnp.cos(theta), jnp.sin(theta)
        inv = jnp.array([[c, s], [-s, c]]) / scale
        src = list(inv @ (grid_2xP - shift[:, None]) + centre_2x1)

        def channel(plane_HxW):
            return jax.scipy.ndimage.map_coordinates(plane_HxW, src, order=1, cval=0.0).reshape(h, w)

        return jax.vmap(channel, in_axes=2, out_axes=2)(img_HxWxC)

    images = images_BxHxWxC.astype(jnp.float32)
    if hflip > 0:  # its own key (fold_in), so the other draws are the same bits with or without flips
        flip_B = jax.random.uniform(jax.random.fold_in(key, 3), (b,)) < hflip
        images = jnp.where(flip_B[:, None, None, None], mirror(images), images)
    if all(isinstance(v, (int, float)) and v == 0 for v in (max_shift, max_rotate, max_scale)):
        return images  # the identity warp samples each pixel exactly: skip its gathers (clothes' mirrors)
    return jax.vmap(warp)(images, theta_B, scale_B, shift_Bx2)


def _box_mask(top_B, left_B, h_B, w_B, h: int, w: int) -> jax.Array:
    """bool[B, H, W, 1]: inside each image's rectangle (rows top..top+h-1, columns left..left+w-1)."""
    rows = jnp.arange(h, dtype=jnp.float32)[None, :]
    cols = jnp.arange(w, dtype=jnp.float32)[None, :]
    rows_BxH = (rows >= top_B[:, None]) & (rows < (top_B + h_B)[:, None])
    cols_BxW = (cols >= left_B[:, None]) & (cols < (left_B + w_B)[:, None])
    return (rows_BxH[:, :, None] & cols_BxW[:, None, :])[..., None]


def random_erase(
    key: jax.Array, images: jax.Array, prob: float, area: tuple[float, float] = (0.02, 0.4)
) -> jax.Array:
    """Random erasing (Zhong et al. 2017): with probability `prob` per image, one rectangle of area
    U(area) x the image and aspect ratio log-uniform in [0.3, 1/0.3], placed uniformly inside the image,
    is filled with uniform noise in [0, 1] (every channel). Images are float [B, H, W, C] in [0, 1]."""
    b, h, w, _ = images.shape
    k_on, k_area, k_aspect, k_row, k_col, k_fill = jax.random.split(key, 6)
    on_B = jax.random.uniform(k_on, (b,)) < prob
    area_B = jax.random.uniform(k_area, (b,), minval=area[0], maxval=area[1]) * (h * w)
    aspect_B = jnp.exp(jax.random.uniform(k_aspect, (b,), minval=math.log(0.3), maxval=-math.log(0.3)))
    h_B = jnp.clip(jnp.round(jnp.sqrt(area_B * aspect_B)), 1, h)
    w_B = jnp.clip(jnp.round(jnp.sqrt(area_B / aspect_B)), 1, w)
    top_B = jnp.floor(jax.random.uniform(k_row, (b,)) * (h - h_B + 1))
    left_B = jnp.floor(jax.random.uniform(k_col, (b,)) * (w - w_B + 1))
    mask = _box_mask(top_B, left_B, h_B, w_B, h, w) & on_B[:, None, None, None]
    return jnp.where(mask, jax.random.uniform(k_fill, images.shape), images)


def translate(key: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """Each image [B, H, W, C] moved by its own whole-pixel offset in [-max_shift, max_shift] along each
    axis, zero fill (DiffAugment's translation, Zhao et al. 2020): a gather, so the gradient reaches the
    pixels (a GAN's generator learns through it). Pure and jit-able; max_shift is a Python int."""
    b, h, w, c = images.shape
    s = int(max_shift)
    if s == 0:
        return images
    offsets_Bx2 = jax.random.randint(key, (b, 2), 0, 2 * s + 1)
    padded = jnp.pad(images, ((0, 0), (s, s), (s, s), (0, 0)))

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets_Bx2)


def cutout(key: jax.Array, images: jax.Array, size: int) -> jax.Array:
    """Each image [B, H, W, C] with one size x size square (its centre uniform over the image, clipped at
    the border) set to zero in every channel (DiffAugment's cutout, after DeVries and Taylor 2017): a mask
    product, so the gradient reaches the other pixels. Pure and jit-able; size is a Python int."""
    b, h, w, _ = images.shape
    if size <= 0:
        return images
    odd = 1 - size % 2
    high = h + odd if h == w else jnp.array([[h + odd, w + odd]])  # a square keeps its draws' bits
    centre_Bx2 = jax.random.randint(key, (b, 2), 0, high)
    top_B, left_B = centre_Bx2[:, 0] - size // 2, centre_Bx2[:, 1] - size // 2
    side_B = jnp.full((b,), size)
    keep = ~_box_mask(top_B, left_B, side_B, side_B, h, w)
    return images * keep.astype(images.dtype)
