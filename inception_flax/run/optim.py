"""The paper's training recipe as Optax transformations: learning-rate schedules, the
optimizer chain (L2 weight decay → gradient clipping → TF1 RMSProp or SGD with momentum),
label-smoothed cross-entropy and TF's exponential moving average of the weights.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

SCHEDULES = ("exponential", "cosine", "constant")
OPTIMIZERS = ("rmsprop", "momentum")


def learning_rate(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """The learning rate per step.

    Peak rate = `learning_rate × global_batch_size / base_batch_size` (linear scaling from the
    batch the base rate was tuned for). Schedules: "exponential" (× `lr_decay_rate` every
    `lr_decay_epochs`, staircase: the paper's 0.94 every 2 epochs), "cosine" (to 0 at the end),
    "constant"; `warmup_epochs` of linear warm-up from 0 come first.
    """
    peak = config.learning_rate * config.global_batch_size / config.base_batch_size
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    total = int(round(config.num_epochs * steps_per_epoch))
    if config.lr_schedule == "exponential":
        main = optax.exponential_decay(
            peak, transition_steps=max(1, int(round(config.lr_decay_epochs * steps_per_epoch))),
            decay_rate=config.lr_decay_rate, staircase=True)
    elif config.lr_schedule == "cosine":
        main = optax.cosine_decay_schedule(peak, decay_steps=max(1, total - warmup))
    elif config.lr_schedule == "constant":
        main = optax.constant_schedule(peak)
    else:
        raise ValueError(f"lr_schedule={config.lr_schedule!r} is not valid; choose "
                         "'exponential', 'cosine' or 'constant'.")
    if warmup == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def kernel_mask(params):
    """True for convolution kernels, the only weights TF-slim's L2 regularizer decays."""
    flat = flax.traverse_util.flatten_dict(params)
    return flax.traverse_util.unflatten_dict({k: k[-1] == "kernel" for k in flat})


def optimizer(config: ml_collections.ConfigDict,
              schedule: optax.Schedule) -> optax.GradientTransformation:
    """L2 weight decay on kernels (slim's `weight_decay × ||w||²/2`, gradient `wd × w`), then
    clipping by global norm, then the optimizer, as TF-slim's training applied them."""
    parts = []
    if config.weight_decay:
        parts.append(optax.add_decayed_weights(config.weight_decay, mask=kernel_mask))
    if config.gradient_clip_norm:
        parts.append(optax.clip_by_global_norm(config.gradient_clip_norm))
    if config.optimizer == "rmsprop":
        # TF1's RMSPropOptimizer: mean square starts at 1, epsilon inside the square root,
        # the learning rate applied inside the momentum accumulator.
        parts.append(optax.rmsprop(schedule, decay=config.rmsprop_decay,
                                   eps=config.rmsprop_epsilon, initial_scale=1.0,
                                   eps_in_sqrt=True, momentum=config.momentum))
    elif config.optimizer == "momentum":  # table 3's baseline: SGD with momentum
        parts.append(optax.sgd(schedule, momentum=config.momentum))
    else:
        raise ValueError(f"optimizer={config.optimizer!r} is not valid; choose 'rmsprop' or "
                         "'momentum'.")
    return optax.chain(*parts)


def smoothed_cross_entropy(logits, labels, num_classes: int, smoothing: float):
    """Per-example cross-entropy against q'(k) = (1 - ε) δ(k, y) + ε / K (section 7)."""
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), smoothing)
    return optax.softmax_cross_entropy(logits, targets)


def ema_decay(step, decay: float):
    """TF's ExponentialMovingAverage with num_updates: min(decay, (1 + n) / (10 + n))."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(average, value, step, decay: float):
    """One update of the moving average: a ← d · a + (1 - d) · v, d = ema_decay(step)."""
    d = ema_decay(step, decay)
    return jax.tree_util.tree_map(lambda a, v: d * a + (1.0 - d) * v, average, value)
