"""The step functions, each alone (module-level, as flax's `train_step`): the gradients of a
stand-in model over two replicas against a hand-written loss, the update against plain SGD and
TF's moving average, and the eval counts against a hand count."""

import functools
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from inception_flax.run import flat, optim, steps

CONFIG = ml_collections.ConfigDict({"image_size": 2, "label_smoothing": 0.1,
                                    "aux_loss_weight": 0.4, "ema_decay": 0.5,
                                    "model": {"dtype": "float32"}})


class Linear:
    """A stand-in network: logits = mean over each image's pixels times a weight per class."""

    def apply(self, variables, images, train=False, return_endpoints=False, mutable=(),
              rngs=None):
        logits = images.mean(axis=(1, 2, 3))[:, None] * variables["params"]["w"]
        if not train:
            return logits
        return (logits, {}), {"batch_stats": variables["batch_stats"]}


def test_gradients_alone_are_the_replicas_shares_of_the_global_loss():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (2, 2, 2, 2, 1)).astype(np.uint8)  # 2 replicas × 2 images
    labels = rng.randint(0, 3, (2, 2)).astype(np.int32)
    params, stats = {"w": jnp.array([0.5, -1.0, 2.0])}, {"m": jnp.zeros(1)}
    gradients = jax.vmap(functools.partial(steps.gradients, model=Linear(), config=CONFIG,
                                           num_classes=3),
                         in_axes=(None, None, None, None, 0), axis_name=steps.AXIS)
    grads, _, metrics = gradients(params, stats, jax.random.PRNGKey(0), 0,
                                  {"image": images, "label": labels})

    def global_loss(w):  # by hand: label-smoothed cross-entropy over all four images
        x = (images.reshape(4, -1).astype(np.float32) / 127.5 - 1.0).mean(1)
        logits = x[:, None] * w
        targets = jax.nn.one_hot(labels.reshape(4), 3) * 0.9 + 0.1 / 3
        return -(targets * jax.nn.log_softmax(logits)).sum(1).mean()
    expected = jax.grad(global_loss)(params["w"])
    # Two replicas (a mapped axis): their gradients average to the global loss's gradient,
    # and each reports the global loss.
    np.testing.assert_allclose(grads["w"].mean(0), expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], [global_loss(params["w"])] * 2, rtol=1e-6)
    # As the train step runs it (`jax.shard_map` over the mesh), one replica, all four images.
    mesh = jax.make_mesh((1,), (steps.AXIS,))
    sharded = jax.jit(jax.shard_map(
        functools.partial(steps.gradients, model=Linear(), config=CONFIG, num_classes=3),
        mesh=mesh, in_specs=(P(), P(), P(), P(), P(steps.AXIS)), out_specs=P()))
    batch = steps.to_global({"image": images.reshape(4, 2, 2, 1), "label": labels.reshape(4)},
                            NamedSharding(mesh, P(steps.AXIS)))
    grads, _, _ = sharded(params, stats, jax.random.PRNGKey(0), 0, batch)
    np.testing.assert_allclose(grads["w"], expected, rtol=1e-5)


def test_update_alone_is_the_optimizers_step_and_tfs_moving_average():
    params = {"a": {"kernel": jnp.array([1.0, 2.0])}, "b": {"bias": jnp.array([3.0])}}
    grads = {"a": {"kernel": jnp.array([0.5, -0.5])}, "b": {"bias": jnp.array([2.0])}}
    tx = optax.sgd(0.1)
    layout = flat.Layout.of(params)
    state = steps.TrainState(step=jnp.array(4), params=params, batch_stats={},
                             opt_state=tx.init(layout.pack(params)), ema_params=params,
                             ema_batch_stats={}, rng=jax.random.PRNGKey(0))
    new, metrics = steps.update(state, grads, {}, layout.offsets(), tx=tx,
                                schedule=lambda step: 0.1, ema_decay=0.5)
    assert int(new.step) == 5
    np.testing.assert_allclose(new.params["a"]["kernel"], [0.95, 2.05])
    np.testing.assert_allclose(new.params["b"]["bias"], [2.8])
    # TF's average: d = min(0.5, (1 + 4) / (10 + 4)) = 0.357...; a = d·a + (1 − d)·new.
    d = min(0.5, 5 / 14)
    np.testing.assert_allclose(new.ema_params["b"]["bias"], [d * 3.0 + (1 - d) * 2.8],
                               rtol=1e-6)
    assert float(metrics["grad_norm"]) == pytest.approx(np.sqrt(0.25 + 0.25 + 4.0))
    assert float(metrics["learning_rate"]) == pytest.approx(0.1)
    assert optim.ema_decay(4, 0.5) == pytest.approx(d)


def test_eval_step_alone_counts_hits_of_the_unmasked_examples():
    logits = jnp.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                        [0.0, 0.0, 9.0, 0.0, 0.0, 0.0]])
    model = SimpleNamespace(apply=lambda variables, images: logits)
    batch = {"image": np.zeros((1, 3, 2, 2, 1), np.uint8),
             "label": np.array([[5, 5, 1]], np.int32),  # top-1 hit, top-5 miss, top-5 hit
             "mask": np.array([[True, True, False]])}  # the third is padding
    counts, right = jax.vmap(functools.partial(steps.eval_step, model=model, config=CONFIG,
                                               num_classes=6),
                             in_axes=(None, None, 0), axis_name=steps.AXIS)({}, {}, batch)
    assert counts[0].tolist() == [1, 1, 2]  # top-1 hits, top-5 hits, examples
    assert right[0].tolist() == [True, False, False]  # the padding's is not counted
