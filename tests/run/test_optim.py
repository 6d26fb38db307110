"""The recipe against hand computations: TF1's RMSProp with momentum, clipping and weight
decay; label smoothing; the learning-rate schedules; TF's moving-average warm-up."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from inception_flax.run import optim


def recipe(**overrides):
    config = ml_collections.ConfigDict(dict(
        optimizer="rmsprop", rmsprop_decay=0.9, rmsprop_epsilon=1.0, momentum=0.9,
        learning_rate=0.045, base_batch_size=32, global_batch_size=64, lr_schedule="exponential",
        lr_decay_rate=0.94, lr_decay_epochs=2.0, warmup_epochs=0.0, gradient_clip_norm=2.0,
        weight_decay=4e-5, num_epochs=10.0))
    config.update(overrides)
    return config


def test_optimizer_is_tf1_rmsprop_with_clipping_and_weight_decay():
    config = recipe(weight_decay=0.05)  # large, so that decay visibly matters
    steps_per_epoch = 2  # the rate decays (staircase) every 4 steps
    schedule = optim.learning_rate(config, steps_per_epoch)
    tx = optim.optimizer(config, schedule)
    rng = np.random.RandomState(0)
    params = {"conv": {"kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
                       "bias": rng.normal(size=(4,)).astype(np.float32)},
              "bn": {"bias": rng.normal(size=(4,)).astype(np.float32)}}
    state = tx.init(params)
    current = jax.tree_util.tree_map(jnp.asarray, params)
    # TF1's RMSPropOptimizer(lr, decay, momentum, epsilon) written out by hand, after slim's
    # L2 regularization (gradient wd · w on kernels) and clipping by global norm.
    ms = {k: np.ones_like(v) for k, v in _flat(params).items()}
    mom = {k: np.zeros_like(v) for k, v in _flat(params).items()}
    w = {k: v.copy() for k, v in _flat(params).items()}
    for step in range(9):
        grads = {k: rng.normal(scale=3.0, size=v.shape).astype(np.float32) for k, v in w.items()}
        total = {k: g + (0.05 * w[k] if k.endswith("kernel") else 0) for k, g in grads.items()}
        norm = math.sqrt(sum(float(np.sum(g ** 2)) for g in total.values()))
        scale = min(1.0, 2.0 / norm)
        lr = 0.045 * 64 / 32 * 0.94 ** (step // 4)
        for k in w:
            g = total[k] * scale
            ms[k] = 0.9 * ms[k] + 0.1 * g * g
            mom[k] = 0.9 * mom[k] + lr * g / np.sqrt(ms[k] + 1.0)
            w[k] = w[k] - mom[k]
        updates, state = tx.update(_unflat(grads), state, current)
        current = optax.apply_updates(current, updates)
        for k, v in _flat(current).items():
            np.testing.assert_allclose(v, w[k], rtol=2e-5, atol=1e-6)


def test_sgd_momentum_baseline():
    config = recipe(optimizer="momentum", weight_decay=0.0, gradient_clip_norm=0.0,
                    lr_schedule="constant")
    tx = optim.optimizer(config, optim.learning_rate(config, 10))
    w, v = np.array([1.0, -2.0], np.float32), np.zeros(2, np.float32)
    params = {"kernel": jnp.asarray(w)}
    state = tx.init(params)
    for g in ([0.5, 1.0], [-1.0, 2.0], [0.1, 0.1]):
        g = np.array(g, np.float32)
        v = 0.9 * v + g
        w = w - 0.09 * v  # 0.045 × 64 / 32
        updates, state = tx.update({"kernel": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(params["kernel"], w, rtol=1e-6)


def _flat(tree):
    return {f"{outer}/{inner}": np.asarray(leaf)
            for outer, inner_tree in tree.items() for inner, leaf in inner_tree.items()}


def _unflat(flat):
    tree = {}
    for key, value in flat.items():
        outer, inner = key.split("/")
        tree.setdefault(outer, {})[inner] = jnp.asarray(value)
    return tree


def test_label_smoothing_by_hand():
    logits = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    labels = np.array([0, 3])
    eps, k = 0.1, 4
    expected = []
    for row, y in zip(logits, labels):
        log_p = row - np.log(np.sum(np.exp(row)))
        q = np.full(k, eps / k)
        q[y] += 1 - eps  # q'(k) = (1 - ε) δ(k, y) + ε / K
        expected.append(-np.sum(q * log_p))
    got = optim.smoothed_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), k, eps)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("schedule", ["exponential", "cosine", "constant"])
def test_learning_rate_schedules(schedule):
    config = recipe(lr_schedule=schedule, warmup_epochs=1.0, num_epochs=10.0)
    steps_per_epoch = 10
    rate = optim.learning_rate(config, steps_per_epoch)
    peak = 0.045 * 64 / 32
    for step in (0, 5, 10, 19, 20, 39, 40, 41, 99):
        if step < 10:
            expected = peak * step / 10  # linear warm-up from 0
        elif schedule == "exponential":
            expected = peak * 0.94 ** ((step - 10) // 20)  # staircase every 2 epochs
        elif schedule == "cosine":
            expected = peak * 0.5 * (1 + math.cos(math.pi * (step - 10) / 90))
        else:
            expected = peak
        assert float(rate(step)) == pytest.approx(expected, rel=1e-5, abs=1e-9)
    no_warmup = optim.learning_rate(recipe(), steps_per_epoch)
    assert float(no_warmup(0)) == pytest.approx(peak)
    assert float(no_warmup(20)) == pytest.approx(peak * 0.94)


def test_ema_follows_tf_warmup():
    decay = 0.9999
    average = np.zeros(3)
    tree = {"w": jnp.zeros(3)}
    values = np.random.RandomState(0).normal(size=(30, 3))
    for n, value in enumerate(values):
        d = min(decay, (1 + n) / (10 + n))  # tf.train.ExponentialMovingAverage(num_updates=n)
        average = d * average + (1 - d) * value
        tree = optim.ema_update(tree, {"w": jnp.asarray(value)}, n, decay)
        np.testing.assert_allclose(tree["w"], average, rtol=1e-5)
    assert float(optim.ema_decay(10 ** 6, decay)) == pytest.approx(decay)


def test_weight_decay_only_on_kernels():
    mask = optim.kernel_mask({"a": {"kernel": 1, "bias": 2}, "BatchNorm": {"bias": 3}})
    assert mask == {"a": {"kernel": True, "bias": False}, "BatchNorm": {"bias": False}}
