"""The layers every Inception block is made of, described as data and built by `Branch`.

`Conv` and `Pool` describe one TF-slim layer (its scope name, kernel, stride, padding);
`Branch` builds a sequence of them under one scope (`Branch_0` ... `Branch_3`), so a block
reads like TF-slim's `nets/inception_v3.py`. A tuple of `Conv` inside a branch is a parallel
split whose outputs are concatenated (figure 7's expanded filter bank).

Convolutions follow TF-slim's `inception_v3_arg_scope`: no bias, batch norm without a learned
scale, ReLU, He (variance-scaling) initialisation. Padding "SAME" is TF's convention (extra
padding at the bottom/right); average pooling with "SAME" padding averages over the unpadded
cells only, as TF and Keras do.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from inception_flax.model import lowering, cpu_ops
from inception_flax.model.architecture import InceptionConfig


class InputTooSmall(ValueError):
    """A VALID window does not fit in its input; `models.Inception` turns it into a ValueError
    that names the smallest input the variant takes."""


@dataclasses.dataclass(frozen=True)
class Conv:
    """One convolution (+ batch norm + activation), as `slim.conv2d` in the arg scope."""

    name: str
    features: int  # after `InceptionConfig.depth`
    kernel: tuple[int, int]
    stride: int = 1
    padding: Literal["SAME", "VALID"] = "SAME"
    relu: bool = True
    batch_norm: bool = True  # False: a bias instead (aux head's plain layers, logits)
    init_stddev: float | None = None  # None: He init; else truncated normal (aux head)


@dataclasses.dataclass(frozen=True)
class Pool:
    """One pooling layer, as `slim.max_pool2d` / `slim.avg_pool2d`."""

    name: str
    kind: Literal["max", "avg"]
    window: tuple[int, int]
    stride: int = 1
    padding: Literal["SAME", "VALID"] = "SAME"


Layer = Union[Conv, Pool, tuple]


@dataclasses.dataclass(frozen=True)
class Runtime:
    """How the network runs, not what it is: the backend's lowering (`lowering.choose`, the
    one dispatch point) and, in training, the mesh axis over which batch norm computes its
    statistics (synchronized batch norm; None: each replica's own batch, as the paper's
    replicas did). Every module gets it beside the architecture's `InceptionConfig`."""

    lowering: lowering.Lowering = lowering.Lowering()
    batch_norm_axis_name: str | None = None


def check_window(name: str, x, window: tuple[int, int], padding: str) -> None:
    """Raises InputTooSmall where a VALID window is larger than the feature map."""
    if padding == "VALID" and (x.shape[1] < window[0] or x.shape[2] < window[1]):
        raise InputTooSmall(
            f"{name}: a {window[0]}×{window[1]} VALID window does not fit a "
            f"{x.shape[1]}×{x.shape[2]} feature map")


@functools.cache
def kernel_initializer(stddev: float | None):
    """He (variance-scaling) initialisation, or a truncated normal of `stddev`, jitted, so that
    `init` traces it once per shape."""
    init = (nn.initializers.he_normal() if stddev is None
            else nn.initializers.truncated_normal(stddev=stddev))
    return jax.jit(init, static_argnums=(1, 2))


def param(module: nn.Module, name: str, init, shape: tuple[int, ...], direct: bool = True):
    """`module.param(name, init, shape)` (float32). `direct`: a stored parameter is read
    without flax's check, which traces the initializer again at every `apply` (a large part
    of the train step's tracing time); its shape is checked here instead."""
    if not direct or not module.has_variable("params", name):
        return module.param(name, init, shape, jnp.float32)
    value = module.get_variable("params", name)
    if value.shape != shape:
        raise ValueError(
            f"{'/'.join(module.scope.path)}/{name} has shape {value.shape}, but this model "
            f"needs {shape}: the parameters belong to another variant (width, classes or "
            "blocks); build the model from the config they were trained with.")
    return value


class Convolution(nn.Module):
    """`flax.linen.Conv` as TF-slim's layers use it (NHWC, one stride, "SAME"/"VALID"
    padding, optional bias; inputs and parameters cast to `dtype`), lowered as `lowering`
    says: XLA's convolution or `cpu_ops.conv_as_matmul`."""

    features: int
    kernel_size: tuple[int, int]
    stride: int
    padding: str
    use_bias: bool
    kernel_init: object
    dtype: object
    lowering: lowering.Lowering

    @nn.compact
    def __call__(self, x):
        direct = self.lowering.parameters == "direct"
        kernel = param(self, "kernel", self.kernel_init,
                       (*self.kernel_size, x.shape[-1], self.features), direct)
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        strides = (self.stride, self.stride)
        if self.lowering.convolution == "matmul":
            y = cpu_ops.conv_as_matmul(x, kernel, strides, self.padding)
        else:
            y = jax.lax.conv_general_dilated(x, kernel, strides, self.padding,
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + param(self, "bias", nn.initializers.zeros, (self.features,),
                          direct).astype(self.dtype)
        return y


class BasicConv2d(nn.Module):
    """`slim.conv2d` under TF-slim's Inception arg scope: conv → batch norm → ReLU."""

    spec: Conv
    config: InceptionConfig
    runtime: Runtime

    @nn.compact
    def __call__(self, x, train: bool):
        spec, dtype, lowering = self.spec, jnp.dtype(self.config.dtype), self.runtime.lowering
        check_window("/".join(self.scope.path), x, spec.kernel, spec.padding)
        x = Convolution(spec.features, spec.kernel, spec.stride, spec.padding,
                        not spec.batch_norm, kernel_initializer(spec.init_stddev), dtype,
                        lowering, name="Conv")(x)
        if not spec.batch_norm:
            return nn.relu(x) if spec.relu else x
        decay, epsilon = self.config.batch_norm_decay, self.config.batch_norm_epsilon
        axis_name = self.runtime.batch_norm_axis_name
        if lowering.batch_norm == "written_out":
            return BatchNorm(decay, epsilon, axis_name, spec.relu, lowering.parameters,
                             name="BatchNorm")(x, train)
        x = nn.BatchNorm(use_running_average=not train, momentum=decay, epsilon=epsilon,
                         dtype=x.dtype, use_scale=False, axis_name=axis_name,
                         name="BatchNorm")(x)
        return nn.relu(x) if spec.relu else x


class BatchNorm(nn.Module):
    """`flax.linen.BatchNorm(use_scale=False)` followed by ReLU where `relu`: the same
    variables (params `bias`; batch_stats `mean`, `var`), values and moving averages, with
    the training gradient written out by `cpu_ops.batch_norm` (`lowering.Lowering.batch_norm`).
    Output in the input's dtype."""

    momentum: float
    epsilon: float
    axis_name: str | None
    relu: bool
    parameters: str = "direct"  # `lowering.Lowering.parameters`

    @nn.compact
    def __call__(self, x, train: bool):
        features = (x.shape[-1],)
        bias = param(self, "bias", nn.initializers.zeros, features, self.parameters == "direct")
        moving_mean = self.variable("batch_stats", "mean", jnp.zeros, features, jnp.float32)
        moving_var = self.variable("batch_stats", "var", jnp.ones, features, jnp.float32)
        if not train:
            y = ((x - moving_mean.value) * jax.lax.rsqrt(moving_var.value + self.epsilon)
                 + bias).astype(x.dtype)
            return nn.relu(y) if self.relu else y
        initializing = self.is_initializing()
        y, mean, var = cpu_ops.batch_norm(x, bias, self.epsilon, self.relu,
                                      None if initializing else self.axis_name)
        if not initializing:
            moving_mean.value = self.momentum * moving_mean.value + (1 - self.momentum) * mean
            moving_var.value = self.momentum * moving_var.value + (1 - self.momentum) * var
        return y


class Pooling(nn.Module):
    """A parameter-free pooling layer, a module so that the cost table can name it."""

    spec: Pool
    runtime: Runtime

    @nn.compact
    def __call__(self, x):
        spec = self.spec
        check_window("/".join(self.scope.path), x, spec.window, spec.padding)
        strides = (spec.stride, spec.stride)
        if spec.kind == "max" and self.runtime.lowering.max_pool_gradient == "slices":
            return cpu_ops.max_pool(x, spec.window, spec.stride, spec.padding)
        if spec.kind == "max":
            return nn.max_pool(x, spec.window, strides=strides, padding=spec.padding)
        return nn.avg_pool(x, spec.window, strides=strides, padding=spec.padding,
                           count_include_pad=False)


def apply_layer(layer: Layer, x, train: bool, config: InceptionConfig, runtime: Runtime):
    """Builds and applies one layer description (or a parallel split, concatenated) in the
    scope of the module whose `__call__` is running."""
    if isinstance(layer, Conv):
        return BasicConv2d(layer, config, runtime, name=layer.name)(x, train)
    if isinstance(layer, Pool):
        return Pooling(layer, runtime, name=layer.name)(x)
    return jnp.concatenate([apply_layer(part, x, train, config, runtime) for part in layer],
                           axis=-1)


class Branch(nn.Module):
    """One branch of a block: its layers applied in order under one scope (`Branch_k`)."""

    layers: tuple
    config: InceptionConfig
    runtime: Runtime

    @nn.compact
    def __call__(self, x, train: bool):
        for layer in self.layers:
            x = apply_layer(layer, x, train, self.config, self.runtime)
        return x

