"""Convolution and max pooling written as matrix products and strided slices, for XLA's CPU
backend (`InceptionConfig.lowering`).

The functions compute what `lax.conv_general_dilated` and `lax.reduce_window` compute, and
their gradients are what JAX derives for those; only the program XLA is given differs. On CPU
that program is much faster to run (see `benchmarks/NOTES.md`):

- `conv_as_matmul`: a k×k convolution as one matrix product of im2col patches (the k·k strided
  slices of the input side by side) with the kernel reshaped to (k·k·C_in, C_out). XLA:CPU runs
  the product at close to its matmul throughput; its own convolution, and above all the
  convolution JAX derives for the kernel's gradient (a window as large as the feature map,
  contracting over the batch), run at a few percent of it. Autodiff of the slices and the
  product gives the same gradients as the convolution's.
- `max_pool`: forward by `lax.reduce_window`; the gradient (a custom VJP) goes to the first
  maximum of each window in row-major order, as XLA's select-and-scatter does, computed by
  strided slices instead of the index-tracking reduce-window and scatter XLA:CPU expands
  select-and-scatter into.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax


def _explicit_padding(padding, spatial, window, strides):
    if isinstance(padding, str):
        return tuple(lax.padtype_to_pads(spatial, window, strides, padding))
    return tuple(tuple(p) for p in padding)


def _windows(x, window, strides, out):
    """The strided slices x[:, i::s, j::s, :] of each window offset (i, j), row-major."""
    (kh, kw), (sh, sw), (ho, wo) = window, strides, out
    batch, _, _, channels = x.shape
    return [lax.slice(x, (0, i, j, 0), (batch, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1,
                                        channels), (1, sh, sw, 1))
            for i in range(kh) for j in range(kw)]


def conv_as_matmul(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None,
                   preferred_element_type=None):
    """`lax.conv_general_dilated` for NHWC inputs and HWIO kernels (what `flax.linen.Conv`
    passes; it takes this function as `conv_general_dilated`), by im2col and one dot."""
    undilated = all(d == 1 for d in (lhs_dilation or (1, 1)) + (rhs_dilation or (1, 1)))
    if (dimension_numbers is not None and tuple(dimension_numbers.lhs_spec) != (0, 3, 1, 2)) \
            or feature_group_count != 1 or not undilated:
        raise NotImplementedError(
            "conv_as_matmul takes undilated, ungrouped NHWC convolutions only; build the "
            "model with lowering='xla' for others.")
    kh, kw, c_in, c_out = rhs.shape
    pads = _explicit_padding(padding, lhs.shape[1:3], (kh, kw), window_strides)
    if any(p for pair in pads for p in pair):
        lhs = jnp.pad(lhs, ((0, 0), *pads, (0, 0)))
    ho = (lhs.shape[1] - kh) // window_strides[0] + 1
    wo = (lhs.shape[2] - kw) // window_strides[1] + 1
    cols = _windows(lhs, (kh, kw), window_strides, (ho, wo))
    patches = cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)
    # Patch channels are ordered (i, j, c), as the HWIO kernel is when flattened.
    return lax.dot_general(patches, rhs.reshape(kh * kw * c_in, c_out),
                           (((3,), (0,)), ((), ())), precision=precision,
                           preferred_element_type=preferred_element_type)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool(x, window: tuple[int, int], stride: int, padding):
    """Max pooling of NHWC `x` (padding "SAME", "VALID" or explicit pairs)."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, stride, stride, 1),
                             padding if isinstance(padding, str) else ((0, 0), *padding, (0, 0)))


def _max_pool_fwd(x, window, stride, padding):
    y = max_pool(x, window, stride, padding)
    return y, (x, y)


def _max_pool_bwd(window, stride, padding, residuals, grad):
    x, y = residuals
    height, width = x.shape[1:3]
    pads = _explicit_padding(padding, (height, width), window, (stride, stride))
    padded = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    (hp, wp), (ho, wo) = padded.shape[1:3], y.shape[1:3]
    taken = jnp.zeros(y.shape, bool)
    dx = jnp.zeros(padded.shape, grad.dtype)
    zero = jnp.zeros((), grad.dtype)
    offsets = [(i, j) for i in range(window[0]) for j in range(window[1])]
    for (i, j), xs in zip(offsets, _windows(padded, window, (stride, stride), (ho, wo))):
        hit = (xs == y) & ~taken  # the first maximum of the window takes the gradient
        taken = taken | hit
        dx = dx + lax.pad(jnp.where(hit, grad, zero), zero, (
            (0, 0, 0), (i, hp - i - (ho - 1) * stride - 1, stride - 1),
            (j, wp - j - (wo - 1) * stride - 1, stride - 1), (0, 0, 0)))
    return (dx[:, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width, :],)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
