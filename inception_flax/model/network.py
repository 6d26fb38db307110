"""The whole network (table 1, figure 8's side head) and the public way to build it.

    model = inception_flax.models.create("inception_v3", num_classes=10)
    variables = model.init(rng, images, train=False)
    logits = model.apply(variables, images, train=False)            # NHWC float images
    logits, endpoints = model.apply(variables, images, return_endpoints=True)

Endpoints carry TF-slim's names: every stem layer (`Conv2d_1a_3x3` ...), `Mixed_5b` ...
`Mixed_7c`, `AuxLogits` (when training), `AvgPool_1a`, `PreLogits`, `Logits`, `Predictions`.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from inception_flax.model import lowering
from inception_flax.model.blocks import (AuxHead, Module8, Module17, Module35, Reduction17to8,
                                   Reduction35to17, Stem)
from inception_flax.model.architecture import INCEPTION_V3, InceptionConfig, get_preset
from inception_flax.model.layers import Branch, Conv, InputTooSmall, Runtime


class Inception(nn.Module):
    """Inception-v3 and its ablations: a pure function of one frozen `InceptionConfig`.

    `__call__(images, train=False, return_endpoints=False)` returns float32 logits, or
    `(logits, endpoints)`. With `train=True` batch norm uses batch statistics (pass
    `mutable=["batch_stats"]` and a "dropout" rng) and the endpoints include `AuxLogits`.
    `init` always creates the auxiliary head's parameters (unless `aux_head="none"`), so
    variables made with `train=False` can be trained.

    `runtime` says how it runs (`layers.Runtime`: the backend's lowering, and the mesh axis
    of synchronized batch norm); None: `runtime_for(config)`.
    """

    config: InceptionConfig = INCEPTION_V3
    runtime: Runtime | None = None

    def __call__(self, images, train: bool = False, return_endpoints: bool = False):
        if images.ndim != 4:
            raise ValueError(
                f"images must be a 4-D NHWC batch (batch, height, width, channels); "
                f"got shape {tuple(images.shape)}.")
        try:
            logits, endpoints = self.forward(images, train)
        except InputTooSmall as too_small:
            minimum = min_input_size(self.config, train)
            raise ValueError(
                f"a {images.shape[1]}×{images.shape[2]} input is too small for this variant "
                f"({'training' if train else 'inference'}): it needs at least "
                f"{minimum}×{minimum} pixels ({too_small}). Resize the images or choose a "
                f"variant with a smaller receptive field.") from None
        return (logits, endpoints) if return_endpoints else logits

    @nn.compact
    def forward(self, images, train: bool):
        """The network; raises InputTooSmall where a VALID window does not fit."""
        cfg = self.config
        run = self.runtime or runtime_for(cfg)
        x = images.astype(jnp.dtype(cfg.dtype))
        x, endpoints = Stem(cfg, run, name="Stem")(x, train)
        n_35, n_17, n_8 = cfg.modules_per_grid
        for i, name in enumerate(module_names(5, n_35)):
            # TF-slim's checkpoint names Mixed_5c's 5×5 branch differently.
            slim_5c = dict(branch_1_names=("Conv2d_0b_1x1", "Conv_1_0c_5x5")) if i == 1 else {}
            x = endpoints[name] = Module35(cfg, run, 32 if i == 0 else 64, **slim_5c,
                                           name=name)(x, train)
        x = endpoints["Mixed_6a"] = Reduction35to17(cfg, run, name="Mixed_6a")(x, train)
        for i, name in enumerate(module_names(6, n_17)):
            # c: 128, 160, 160, 192 released; the last is 192, the first 128, the others 160.
            channels = 192 if i == n_17 - 1 else 128 if i == 0 else 160
            x = endpoints[name] = Module17(cfg, run, channels, name=name)(x, train)
        # `init` builds the aux head even for inference, unless the input is too small to
        # train at all (its 5×5/3 pool needs a 5×5 grid after the last 17×17 module).
        if cfg.aux_head != "none" and (train or (self.is_initializing()
                                                  and min(x.shape[1:3]) >= 5)):
            aux = AuxHead(cfg, run, name="AuxLogits")(x, train)
            endpoints["AuxLogits"] = aux.astype(jnp.float32)
        x = endpoints["Mixed_7a"] = Reduction17to8(cfg, run, name="Mixed_7a")(x, train)
        for i, name in enumerate(module_names(7, n_8)):
            x = endpoints[name] = Module8(
                cfg, run, "Conv2d_0b_3x1" if i == 0 else "Conv2d_0c_3x1", name=name)(x, train)
        # Global average pooling, so any input size the variant takes works.
        x = endpoints["AvgPool_1a"] = jnp.mean(x, axis=(1, 2), keepdims=True)
        x = endpoints["PreLogits"] = nn.Dropout(cfg.dropout_rate, deterministic=not train,
                                                name="Dropout_1b")(x)
        logits = Branch((Conv("Conv2d_1c_1x1", cfg.num_classes, (1, 1), relu=False,
                              batch_norm=False),), cfg, run, name="Logits")(x, train)
        logits = endpoints["Logits"] = logits[:, 0, 0, :].astype(jnp.float32)
        endpoints["Predictions"] = jax.nn.softmax(logits)
        return logits, endpoints


def runtime_for(config: InceptionConfig, batch_norm_axis_name: str | None = None) -> Runtime:
    """The runtime for `config` on this backend: the lowering `config.lowering` asks for
    (`lowering.choose`, the one dispatch point), and the batch-norm axis."""
    return Runtime(lowering.choose(config.lowering), batch_norm_axis_name)


def module_names(grid: int, count: int) -> list[str]:
    """TF-slim's endpoint names of the Inception modules at one grid after its reduction:
    Mixed_5b, 5c, ... (grid 5: 35×35), Mixed_6b, ... (17×17), Mixed_7b, ... (8×8)."""
    return [f"Mixed_{grid}{chr(ord('b') + i)}" for i in range(count)]


def create(preset: str | InceptionConfig = "inception_v3", **overrides) -> Inception:
    """The module for a preset name (see `config.PRESETS`) or config, with field overrides."""
    config = preset.replace(**overrides) if isinstance(preset, InceptionConfig) else \
        get_preset(preset, **overrides)
    return Inception(config)


@functools.lru_cache(maxsize=256)
def fits(config: InceptionConfig, size: int | tuple[int, int], train: bool = False) -> bool:
    """Whether the variant takes `size` (square side or (height, width)) inputs."""
    height, width = (size, size) if isinstance(size, int) else size
    images = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
    model = Inception(config, parent=None)
    try:  # shapes only: nothing is computed
        jax.eval_shape(functools.partial(model.init, train=train, method=Inception.forward),
                       jax.random.PRNGKey(0), images)
    except InputTooSmall:
        return False
    return True


@functools.lru_cache(maxsize=None)
def min_input_size(config: InceptionConfig, train: bool = False) -> int:
    """The smallest square input the variant takes (75 for released Inception-v3).

    `train=True` counts the auxiliary head too, whose 5×5/3 pool needs a 5×5 Mixed_6e.
    Found by bisection over shape-only evaluations of the model.
    """
    low, high = 1, 64
    while not fits(config, high, train):
        low, high = high, high * 2
        if high > 1 << 14:
            raise ValueError(f"no input size up to {high} fits config {config}.")
    while low + 1 < high:
        middle = (low + high) // 2
        if fits(config, middle, train):
            high = middle
        else:
            low = middle
    return high

