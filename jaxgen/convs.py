"""Convolutions that stay fast inside `lax.scan` on a CPU, with nn.Conv's parameters and results.

XLA's CPU convolution falls off a cliff inside a loop body (jax-ml/jax#12868, openxla/xla#34273): one Adam
step of a small CNN (conv 32-32, pool, conv 64-64, pool, dense 256; batch 128) took 305 ms jitted alone and
5,163 ms inside `lax.scan` on a 2-core CPU, while the driver runs every step inside a scanned chunk. Here a
k x k convolution is written as its k*k shifted (strided) slices concatenated on the channel axis and one
matrix product ("slices"), and a stride-s transposed convolution as s*s phase convolutions of the undilated
input, interleaved (no multiplications by inserted zeros). Both are plain XLA slices, pads and dots, so
their gradients (and an R1 penalty's gradient of a gradient) come from `jax.grad` as for any other code.

`impl`: "slices" (the above), "xla" (lax.conv_general_dilated / lax.conv_transpose, what nn.Conv and
nn.ConvTranspose call) or "auto": slices on the CPU, XLA's own convolutions on GPU and TPU, where they are
fused cuDNN / TPU kernels. The measurement behind the choice: docs/speed.md (`jaxgen bench peers`).
Parameters are named and shaped as flax's ("kernel" [kh, kw, in, out], "bias" [out]), so one checkpoint
runs under either implementation and tests/test_convs.py holds both to nn.Conv's outputs and gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import runtime
from jaxgen.errors import UserError

IMPLS = ("auto", "slices", "xla")
DIMS = ("NHWC", "HWIO", "NHWC")


def resolve_impl(impl: str, backend: str | None = None) -> str:
    """The implementation `impl` names on `backend` (default: JAX's): auto = slices on cpu, else xla."""
    if impl not in IMPLS:
        raise UserError(f"conv_impl must be one of {', '.join(IMPLS)}, got {impl!r}: --set conv_impl=auto")
    return impl if impl != "auto" else runtime.auto_conv_impl(backend)


def same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """lax's 'SAME' padding (low, high) of one spatial axis: output ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def patches(x_BxHxWxC: jax.Array, k: int, stride: int, pads: tuple[tuple[int, int], ...]) -> jax.Array:
    """[B, Ho, Wo, k*k*C]: every k x k window (taps in kernel order, then channels) at the given stride."""
    b, h, w, c = x_BxHxWxC.shape
    (t, bo), (le, ri) = pads
    xp = jnp.pad(x_BxHxWxC, ((0, 0), (t, bo), (le, ri), (0, 0)))
    ho, wo = (h + t + bo - k) // stride + 1, (w + le + ri - k) // stride + 1
    cols = [
        xp[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
        for i in range(k)
        for j in range(k)
    ]
    return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def conv(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: str = "SAME", impl: str = "auto"):
    """Cross-correlation of NHWC `x` with an HWIO `kernel` (square), as nn.Conv computes it."""
    k = kernel.shape[0]
    if padding == "SAME":
        pads = (same_padding(x.shape[1], k, stride), same_padding(x.shape[2], k, stride))
    elif padding == "VALID":
        pads = ((0, 0), (0, 0))
    else:
        raise UserError(f"padding must be SAME or VALID, got {padding!r}")
    if resolve_impl(impl) == "xla":
        return jax.lax.conv_general_dilated(x, kernel, (stride, stride), pads, dimension_numbers=DIMS)
    cols = patches(x, k, stride, pads)
    return cols @ kernel.reshape(-1, kernel.shape[-1])


def transpose_taps(k: int, stride: int) -> list[list[tuple[int, int]]]:
    """For each output phase r (output row s*q + r): the (kernel tap t, input offset d) pairs with
    y[s*q + r] = sum_t x[q + d] K[t], for lax.conv_transpose with 'SAME' padding and an unflipped kernel
    (flax's nn.ConvTranspose default)."""
    pad_len = k + stride - 2
    pad_a = k - 1 if stride > k - 1 else int(np.ceil(pad_len / 2))
    return [
        [(t, (r + t - pad_a) // stride) for t in range(k) if (r + t - pad_a) % stride == 0]
        for r in range(stride)
    ]


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int = 2, impl: str = "auto") -> jax.Array:
    """Transposed convolution, 'SAME' padding ([B, H, W, C] -> [B, s*H, s*W, F]), as nn.ConvTranspose."""
    k = kernel.shape[0]
    if resolve_impl(impl) == "xla":
        return jax.lax.conv_transpose(x, kernel, (stride, stride), "SAME", dimension_numbers=DIMS)
    b, h, w, c = x.shape
    taps = transpose_taps(k, stride)
    offsets = [d for phase in taps for _, d in phase]
    lo, hi = max(0, -min(offsets)), max(0, max(offsets))
    xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    rows = []
    for taps_r in taps:
        cols_r = []
        for taps_c in taps:
            cols = [
                xp[:, lo + di : lo + di + h, lo + dj : lo + dj + w, :] for _, di in taps_r for _, dj in taps_c
            ]
            weights = jnp.concatenate([kernel[ti, tj] for ti, _ in taps_r for tj, _ in taps_c], axis=0)
            cols_r.append(jnp.concatenate(cols, axis=-1) @ weights)  # [B, H, W, F]
        rows.append(jnp.stack(cols_r, axis=3))  # [B, H, W, s, F]: column phases
    y = jnp.stack(rows, axis=2)  # [B, H, s, W, s, F]
    return y.reshape(b, h * stride, w * stride, kernel.shape[-1])


def max_pool(x_BxHxWxC: jax.Array, size: int = 2) -> jax.Array:
    """Non-overlapping max pooling (nn.max_pool with window = stride = size), as a reshape and a max; a
    side that `size` does not divide loses its last rows, as under 'VALID'."""
    b, h, w, c = x_BxHxWxC.shape
    x = x_BxHxWxC[:, : h // size * size, : w // size * size]
    return x.reshape(b, h // size, size, w // size, size, c).max(axis=(2, 4))


def _with_params(m: Any, x: jax.Array, op: Callable[[jax.Array, jax.Array], jax.Array]) -> jax.Array:
    """op(x, kernel) (+ bias) with nn.Conv's parameters "kernel" [k, k, in, out] and "bias" [out], in
    module m's compute dtype (parameters stay float32)."""
    k = m.kernel_size
    kernel = m.param("kernel", m.kernel_init, (k, k, x.shape[-1], m.features))
    if m.dtype is not None:
        x, kernel = x.astype(m.dtype), kernel.astype(m.dtype)
    y = op(x, kernel)
    if m.use_bias:
        y = y + m.param("bias", nn.initializers.zeros, (m.features,)).astype(y.dtype).reshape(1, 1, 1, -1)
    return y


class Conv(nn.Module):
    """nn.Conv's parameters (square kernel) computed by `impl` (see the module docstring)."""

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: str = "SAME"
    use_bias: bool = True
    impl: str = "auto"
    kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
    dtype: Any = None  # compute dtype (None: float32); parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _with_params(self, x, lambda x, k: conv(x, k, self.strides, self.padding, self.impl))


class ConvTranspose(nn.Module):
    """nn.ConvTranspose's parameters ('SAME', square kernel, unflipped) computed by `impl`."""

    features: int
    kernel_size: int = 4
    strides: int = 2
    use_bias: bool = True
    impl: str = "auto"
    kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _with_params(self, x, lambda x, k: conv_transpose(x, k, self.strides, self.impl))
