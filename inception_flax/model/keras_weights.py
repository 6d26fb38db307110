"""Weights from `keras.applications.InceptionV3` into variables of the released network.

    variables = from_keras("inception_v3_weights_tf_dim_ordering_tf_kernels.h5")
    logits = network.create("inception_v3").apply(variables, images)   # images in [-1, 1]

Keras builds the same graph as TF-slim without the auxiliary head, creating its 94
convolution + batch-norm pairs in TF-slim's order, so they are matched to ours by order and
every shape is checked. Keras is needed only here (`pip install keras`); it runs on the JAX
backend.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import unfreeze

from inception_flax.model import network
from inception_flax.model.architecture import INCEPTION_V3, InceptionConfig
from inception_flax.model.blocks import AuxHead
from inception_flax.model.layers import BasicConv2d
from inception_flax.model.network import Inception

LOGITS = "Logits/Conv2d_1c_1x1"


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        raise ImportError("from_keras needs keras 3: pip install keras") from None
    return keras


def _load(model_or_path):
    keras = _keras()
    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path
    path = os.fspath(model_or_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no Keras model or weights file at {path!r}.")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception:  # a weights-only .h5, as keras.applications downloads them
        for include_top in (True, False):
            model = keras.applications.InceptionV3(weights=None, include_top=include_top)
            try:
                model.load_weights(path)
                return model
            except Exception:
                continue
    raise ValueError(f"{path!r} is neither a saved Keras InceptionV3 nor its weights file.")


def _creation_order(layers):
    """Keras names unnamed layers conv2d, conv2d_1, ... in creation order."""
    def index(layer):
        return int(re.fullmatch(r".*?(?:_(\d+))?", layer.name).group(1) or 0)
    return sorted(layers, key=index)  # stable: named layers keep the model's order


def _get(tree: dict, path: str) -> dict:
    for key in path.split("/"):
        tree = tree[key]
    return tree


def _set(tree: dict, path: str, leaf: str, value, expected_shape):
    node = _get(tree, path)
    if tuple(node[leaf].shape) != tuple(expected_shape):
        raise ValueError(f"shape mismatch at {path}/{leaf}: ours {tuple(node[leaf].shape)}, "
                         f"Keras {tuple(expected_shape)}.")
    node[leaf] = jnp.asarray(value, dtype=node[leaf].dtype)


def from_keras(model_or_path, config: InceptionConfig | None = None, rng=None,
               image_size: int = 299) -> dict:
    """Variables ({"params", "batch_stats"}) for the released network from Keras weights.

    Args:
      model_or_path: a live `keras.applications.InceptionV3`, or the path of a saved
        `.keras`/`.h5` model or of a weights-only `.h5` (as Keras downloads them).
      config: the target config; default: `inception_v3` with Keras's number of classes.
        Only `num_classes`, `dropout_rate`, `dtype`, `lowering`, `aux_head` and batch-norm
        decay may differ from the released network.
      rng: initialises what Keras does not have: the auxiliary head (TF-slim has one) and,
        for an `include_top=False` model, the classifier. Default `PRNGKey(0)`.
      image_size: the input side the auxiliary head is shaped for (299).
    """
    keras = _keras()
    model = _load(model_or_path)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    config = _released(config, dense)
    aux_rng, logits_rng = jax.random.split(jax.random.PRNGKey(0) if rng is None else rng)
    variables, order = _abstract_variables(config, aux_rng, image_size)
    params, stats = variables["params"], variables["batch_stats"]
    if "AuxLogits" in params:  # TF-slim's auxiliary head, which Keras does not have
        params["AuxLogits"], stats["AuxLogits"] = _aux_head(config, variables, aux_rng,
                                                            image_size)
    _copy_convolutions(params, stats, order, model, keras, config)
    _copy_classifier(params, dense, logits_rng)
    return {"params": params, "batch_stats": stats}


def _released(config: InceptionConfig | None, dense: list) -> InceptionConfig:
    """The target config (default: the released network with Keras's classes), refused where
    it changes what Keras's weights fix."""
    if config is None:
        num_classes = dense[-1].units if dense else INCEPTION_V3.num_classes
        config = INCEPTION_V3.replace(num_classes=num_classes)
    free = {"num_classes", "dropout_rate", "dtype", "batch_norm_decay", "aux_head", "lowering"}
    differing = [f.name for f in dataclasses.fields(config)
                 if f.name not in free and getattr(config, f.name) != getattr(INCEPTION_V3, f.name)]
    if differing:
        raise ValueError(f"Keras weights fit the released network only; this config changes "
                         f"{', '.join(differing)}.")
    return config


def _abstract_variables(config: InceptionConfig, rng, image_size: int):
    """The variables' structure (shapes only) and the order the network calls its
    convolutions in: TF-slim's, which Keras's layers follow too (a pytree's dict keys come
    back sorted, so that order is recorded while the network is traced)."""
    images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    order = []

    def record(call, args, kwargs, context):
        if isinstance(context.module, BasicConv2d) and context.method_name == "__call__":
            path = context.module.path
            if path[0] not in ("AuxLogits", "Logits") and "/".join(path) not in order:
                order.append("/".join(path))
        return call(*args, **kwargs)

    with nn.intercept_methods(record):
        variables = unfreeze(jax.eval_shape(functools.partial(
            Inception(config).init, train=False), rng, images))
    return variables, order


def _aux_head(config: InceptionConfig, variables: dict, rng, image_size: int):
    """Initial (params, batch_stats) of the auxiliary head, on the last 17×17 module."""
    images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    ends = jax.eval_shape(lambda v, x: Inception(config).apply(v, x, return_endpoints=True)[1],
                          variables, images)
    last_17x17 = network.module_names(6, config.modules_per_grid[1])[-1]
    aux = AuxHead(config, network.runtime_for(config), parent=None).init(
        rng, jnp.zeros((1, *ends[last_17x17].shape[1:])), train=False)
    return aux["params"], aux["batch_stats"]


def _copy_convolutions(params, stats, order: list, model, keras, config) -> None:
    """Keras's convolutions and batch norms, in creation order, into ours, in call order."""
    convs = _creation_order([l for l in model.layers if isinstance(l, keras.layers.Conv2D)])
    norms = _creation_order([l for l in model.layers
                             if isinstance(l, keras.layers.BatchNormalization)])
    if not len(order) == len(convs) == len(norms):
        raise ValueError(f"expected {len(order)} convolution + batch-norm pairs, the Keras "
                         f"model has {len(convs)} convolutions and {len(norms)} batch norms.")
    for name, conv, norm in zip(order, convs, norms):
        (kernel,) = [np.asarray(w) for w in conv.get_weights()]
        beta, mean, var = [np.asarray(w) for w in norm.get_weights()]
        _set(params, f"{name}/Conv", "kernel", kernel, kernel.shape)
        _set(params, f"{name}/BatchNorm", "bias", beta, beta.shape)
        _set(stats, f"{name}/BatchNorm", "mean", mean, mean.shape)
        _set(stats, f"{name}/BatchNorm", "var", var, var.shape)
        if norm.epsilon != config.batch_norm_epsilon:
            raise ValueError(f"Keras batch norm {norm.name} has epsilon {norm.epsilon}, the "
                             f"config {config.batch_norm_epsilon}.")


def _copy_classifier(params, dense: list, rng) -> None:
    """Keras's classifier, or (include_top=False) a new one, initialised as `BasicConv2d`
    does."""
    if dense:
        kernel, bias = [np.asarray(w) for w in dense[-1].get_weights()]
    else:
        shape = _get(params, f"{LOGITS}/Conv")["kernel"].shape
        kernel = nn.initializers.he_normal()(rng, shape[2:])
        bias = np.zeros(shape[-1:], np.float32)
    _set(params, f"{LOGITS}/Conv", "kernel", kernel[None, None], (1, 1, *kernel.shape))
    _set(params, f"{LOGITS}/Conv", "bias", bias, bias.shape)
