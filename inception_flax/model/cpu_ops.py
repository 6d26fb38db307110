"""Convolution and max pooling written as matrix products and strided slices, for XLA's CPU
backend (chosen by `lowering.choose`), and batch norm + ReLU with its gradient written out.

The functions compute what `lax.conv_general_dilated`, `lax.reduce_window` and
`flax.linen.BatchNorm` compute, and their gradients are what JAX derives for those; only the
program XLA is given differs, and the time it takes to trace (see `benchmarks/NOTES.md`):

- `conv_as_matmul`: a k×k convolution as one matrix product of im2col patches (the k·k strided
  slices of the input side by side) with the kernel reshaped to (k·k·C_in, C_out). XLA:CPU runs
  the product at close to its matmul throughput; its own convolution, and above all the
  convolution JAX derives for the kernel's gradient (a window as large as the feature map,
  contracting over the batch), run at a few percent of it. The gradient is a custom VJP that
  writes out what autodiff derives from the slices and the product (traced in a third of
  autodiff's time): the same gradients as the convolution's.
- `max_pool`: forward by `lax.reduce_window`; the gradient (a custom VJP) goes to the first
  maximum of each window in row-major order, as XLA's select-and-scatter does, computed by
  strided slices instead of the index-tracking reduce-window and scatter XLA:CPU expands
  select-and-scatter into.
- `batch_norm`: training-mode batch norm and ReLU, for every backend, with the textbook
  gradient as a custom VJP (`layers.BatchNorm` holds its variables).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
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


def _unwindow(values, offset, strides, padded):
    """The transpose of one of `_windows`' slices: `values` (the slice's shape) put back at
    window offset (i, j) of a zero array of the sliced input's spatial size `padded`."""
    (i, j), (sh, sw), (hp, wp) = offset, strides, padded
    ho, wo = values.shape[1:3]
    return lax.pad(values, np.zeros((), values.dtype), (
        (0, 0, 0), (i, hp - i - (ho - 1) * sh - 1, sh - 1),
        (j, wp - j - (wo - 1) * sw - 1, sw - 1), (0, 0, 0)))


def _patches(cols, kh, kw):
    """The kh·kw window slices side by side along the channels, ordered (i, j, c) as the HWIO
    kernel is when flattened. Built as a (kh, kw) grid, by a concatenate along a new axis per
    row and one along another new axis for the rows: XLA:CPU fuses a concatenate of at most 8
    operands along a major axis, with the slices (and the batch norm and ReLU before them),
    into one kernel per layer. A concatenate of the 9 slices of a 3×3 window along the
    channels (the minor axis) it keeps as a copy of its own, and every slice becomes a kernel
    of its own, a distinct one per offset (`benchmarks/NOTES.md`)."""
    if len(cols) == 1:
        return cols[0]
    batch, ho, wo, channels = cols[0].shape
    grid = [cols[i * kw:(i + 1) * kw] for i in range(kh)]
    rows = [lax.concatenate([lax.reshape(c, (batch, ho, wo, 1, 1, channels)) for c in row], 4)
            for row in grid]
    return lax.reshape(lax.concatenate(rows, 3), (batch, ho, wo, kh * kw * channels))


def conv_as_matmul(x, kernel, strides, padding):
    """`lax.conv_general_dilated(x, kernel, strides, padding)` for NHWC `x` and an HWIO
    `kernel` (undilated, ungrouped), by im2col and one dot. `padding`: "SAME", "VALID" or
    explicit (low, high) pairs."""
    if kernel.ndim != 4 or x.ndim != 4 or kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"conv_as_matmul takes NHWC inputs and HWIO kernels of as many input channels, "
            f"ungrouped; got {x.shape} and {kernel.shape}. Build the model with "
            "lowering='xla' for other convolutions.")
    pads = _explicit_padding(padding, x.shape[1:3], kernel.shape[:2], strides)
    return _conv(x, _varying_like(kernel, x), tuple(strides), pads, x.shape[1:3], None, None)


def _varying_like(value, like):
    """`value` typed as varying over the mesh axes that `like` varies over, inside
    `jax.shard_map`. Autodiff does this itself where a replicated parameter meets a replica's
    data, and transposes it to the sum of the replicas' gradients; a custom VJP must be given
    inputs of one type for its gradients to be typed (and summed) as autodiff's are."""
    missing = tuple(sorted(_varying_axes(like) - _varying_axes(value)))
    if not missing:
        return value
    if hasattr(lax, "pcast"):
        return lax.pcast(value, missing, to="varying")
    return lax.pvary(value, missing)  # older jax's name


def _varying_axes(x) -> frozenset:
    aval = jax.typeof(x)
    if hasattr(aval, "mat"):
        return frozenset(aval.mat.varying)
    return frozenset(getattr(aval, "vma", ()))  # older jax's name


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _conv(x, kernel, strides, pads, spatial, precision, preferred_element_type):
    return _conv_fwd(x, kernel, strides, pads, spatial, precision, preferred_element_type)[0]


def _conv_fwd(x, kernel, strides, pads, spatial, precision, preferred_element_type):
    kh, kw, c_in, c_out = kernel.shape
    if any(p for pair in pads for p in pair):
        x = lax.pad(x, np.zeros((), x.dtype), ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads),
                                               (0, 0, 0)))
    ho = (x.shape[1] - kh) // strides[0] + 1
    wo = (x.shape[2] - kw) // strides[1] + 1
    patches = _patches(_windows(x, (kh, kw), strides, (ho, wo)), kh, kw)
    out = lax.dot_general(patches, lax.reshape(kernel, (kh * kw * c_in, c_out)),
                          (((3,), (0,)), ((), ())), precision=precision,
                          preferred_element_type=preferred_element_type)
    return out, (patches, kernel)


def _conv_bwd(strides, pads, spatial, precision, preferred_element_type, residuals, grad):
    """The gradients autodiff derives from the slices and the dot, written out: tracing them
    by hand takes far less time than autodiff's (`benchmarks/NOTES.md`)."""
    patches, kernel = residuals
    (hp, wp) = (size + lo + hi for size, (lo, hi) in zip(spatial, pads))  # padded input
    kh, kw, c_in, c_out = kernel.shape
    batch, ho, wo, _ = grad.shape
    grad = lax.convert_element_type(grad, patches.dtype)
    # (C_out, K), transposed after: XLA then transposes the output gradient, not the patches.
    dkernel = lax.dot_general(grad, patches, (((0, 1, 2), (0, 1, 2)), ((), ())),
                              precision=precision)
    dpatches = lax.dot_general(grad, lax.reshape(kernel, (kh * kw * c_in, c_out)),
                               (((3,), (1,)), ((), ())), precision=precision)
    # col2im: each window offset's slice of the patch gradient, back where it was taken from.
    taps = lax.reshape(dpatches, (batch, ho, wo, kh, kw, c_in))
    dx = None
    for i in range(kh):
        for j in range(kw):
            tap = lax.slice(taps, (0, 0, 0, i, j, 0), (batch, ho, wo, i + 1, j + 1, c_in))
            tap = _unwindow(lax.reshape(tap, (batch, ho, wo, c_in)), (i, j), strides, (hp, wp))
            dx = tap if dx is None else lax.add(dx, tap)
    if any(p for pair in pads for p in pair):  # the padding's transpose crops it off
        dx = lax.pad(dx, np.zeros((), dx.dtype),
                     ((0, 0, 0), *((-lo, -hi, 0) for lo, hi in pads), (0, 0, 0)))
    dkernel = lax.reshape(lax.transpose(dkernel, (1, 0)), kernel.shape)
    return dx, lax.convert_element_type(dkernel, kernel.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def batch_norm(x, bias, epsilon: float, relu: bool, axis_name=None):
    """Batch norm in training mode, then ReLU where `relu`: `flax.linen.BatchNorm`'s
    arithmetic with `use_scale=False` (statistics in float32 over every axis but the last,
    the variance as E[x²] - E[x]², both averaged over `axis_name` when it is given), with its
    gradient written out (`benchmarks/NOTES.md`). Returns (output, mean, variance); the
    statistics feed only the moving averages and carry no gradient."""
    y, mean, var = _batch_norm(x, _varying_like(bias, x), epsilon, relu, axis_name)
    return y, lax.stop_gradient(mean), lax.stop_gradient(var)


def _channels(vector, like):
    """A per-channel vector broadcast to NHWC `like`'s shape."""
    return lax.broadcast_in_dim(vector, like.shape, (like.ndim - 1,))


def _means(axis_name, *xs):
    """Each array's mean over every axis but the last, averaged over `axis_name` if given.
    Written in `lax` here and below: each `jnp` function and operator is a jitted function of
    its own, which costs tracing time at every call."""
    count = xs[0].size // xs[0].shape[-1]
    axes = tuple(range(xs[0].ndim - 1))
    means = tuple(lax.div(lax.reduce(x, np.zeros((), x.dtype), lax.add, axes),
                          np.array(count, x.dtype)) for x in xs)
    return lax.pmean(means, axis_name) if axis_name is not None else means


def _normalized(xf, mean, scale):
    """(x - mean) · scale, per channel, as flax's batch norm computes it."""
    return lax.mul(lax.sub(xf, _channels(mean, xf)), _channels(scale, xf))


def _shifted(normalized, bias):
    return lax.add(normalized, _channels(lax.convert_element_type(bias, normalized.dtype),
                                         normalized))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _batch_norm(x, bias, epsilon, relu, axis_name):
    return _batch_norm_fwd(x, bias, epsilon, relu, axis_name)[0]


def _batch_norm_fwd(x, bias, epsilon, relu, axis_name):
    xf = lax.convert_element_type(x, np.promote_types(x.dtype, np.float32))
    mean, mean_square = _means(axis_name, xf, lax.square(xf))
    var = lax.sub(mean_square, lax.square(mean))
    live = lax.gt(var, np.zeros((), var.dtype))  # round-off can make E[x²] - E[x]² negative
    var = lax.max(var, np.zeros((), var.dtype))
    scale = lax.rsqrt(lax.add(var, np.array(epsilon, var.dtype)))
    y = lax.convert_element_type(_shifted(_normalized(xf, mean, scale), bias), x.dtype)
    if relu:
        y = lax.max(y, np.zeros((), y.dtype))
    return (y, mean, var), (x, bias, mean, scale, live)


def _batch_norm_bwd(epsilon, relu, axis_name, residuals, grads):
    grad = grads[0]  # the statistics' cotangents are zero: `batch_norm` stops their gradient
    x, bias, mean, scale, live = residuals
    xf = lax.convert_element_type(x, mean.dtype)
    normalized = _normalized(xf, mean, scale)
    grad = lax.convert_element_type(grad, mean.dtype)
    zeros = lax.full_like(grad, 0)
    if relu:  # the forward's output before the ReLU, recomputed
        positive = lax.gt(_shifted(normalized, bias), zeros)
        grad = lax.select(positive, grad, zeros)
    grad_mean, grad_normalized_mean = _means(axis_name, grad, lax.mul(grad, normalized))
    # Where the variance was clipped to 0 it passes no gradient back (as autodiff's maximum).
    grad_normalized_mean = lax.select(live, grad_normalized_mean,
                                      lax.full_like(grad_normalized_mean, 0))
    dx = lax.mul(_channels(scale, xf), lax.sub(
        lax.sub(grad, _channels(grad_mean, xf)),
        lax.mul(normalized, _channels(grad_normalized_mean, xf))))
    dbias = lax.reduce(grad, np.zeros((), grad.dtype), lax.add, tuple(range(x.ndim - 1)))
    return lax.convert_element_type(dx, x.dtype), lax.convert_element_type(dbias, bias.dtype)


_batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


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
    strides = (stride, stride)
    taken = jnp.zeros(y.shape, bool)
    dx = jnp.zeros(padded.shape, grad.dtype)
    zero = jnp.zeros((), grad.dtype)
    offsets = [(i, j) for i in range(window[0]) for j in range(window[1])]
    for offset, xs in zip(offsets, _windows(padded, window, strides, y.shape[1:3])):
        hit = (xs == y) & ~taken  # the first maximum of the window takes the gradient
        taken = taken | hit
        dx = dx + _unwindow(jnp.where(hit, grad, zero), offset, strides, padded.shape[1:3])
    return (dx[:, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width, :],)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
