"""The train step's update on packed parameters (`flat.Layout`) against the recipe applied leaf
by leaf, and the step's compilation: two programs on the first call, none after."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from inception_flax.run import flat, optim, settings, steps, train
from tests.scripts.tiny import tiny_config


def tree(seed=0):
    rng = np.random.RandomState(seed)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)  # noqa: E731
    return {"Conv2d_1a": {"Conv": {"kernel": normal(3, 3, 2, 4)}, "BatchNorm": {"bias": normal(4)}},
            "Logits": {"Conv": {"kernel": normal(1, 1, 4, 5), "bias": normal(5)}}}


def test_pack_groups_leaves_by_name_and_add_to_puts_them_back():
    params = tree()
    layout = flat.Layout.of(params)
    packed = layout.pack(params)
    assert sorted(packed) == ["bias", "kernel"]
    assert packed["kernel"].shape == (3 * 3 * 2 * 4 + 4 * 5,)
    np.testing.assert_array_equal(packed["bias"][:4], params["Conv2d_1a"]["BatchNorm"]["bias"])
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    back = layout.add_to(zeros, packed, layout.offsets())
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Layout.of"):
        layout.pack({"other": params["Logits"]})


def test_packed_update_is_the_recipe_leaf_by_leaf():
    config = ml_collections.ConfigDict(dict(
        optimizer="rmsprop", rmsprop_decay=0.9, rmsprop_epsilon=1.0, momentum=0.9,
        learning_rate=0.045, base_batch_size=32, global_batch_size=32, lr_schedule="exponential",
        lr_decay_rate=0.94, lr_decay_epochs=2.0, warmup_epochs=0.0, gradient_clip_norm=2.0,
        weight_decay=0.05, num_epochs=10.0))
    tx = optim.optimizer(config, optim.learning_rate(config, 2))
    params = tree()
    layout = flat.Layout.of(params)
    offsets = layout.offsets()
    by_leaf, by_leaf_state = params, tx.init(params)
    packed, packed_state = params, tx.init(layout.pack(params))
    for step in range(5):
        grads = jax.tree_util.tree_map(lambda p: p * 3.0 + step, tree(seed=step + 1))
        updates, by_leaf_state = tx.update(grads, by_leaf_state, by_leaf)
        by_leaf = jax.tree_util.tree_map(jnp.add, by_leaf, updates)
        updates, packed_state = tx.update(layout.pack(grads), packed_state, layout.pack(packed))
        packed = layout.add_to(packed, updates, offsets)
    for a, b in zip(jax.tree_util.tree_leaves(packed), jax.tree_util.tree_leaves(by_leaf)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The clipping bound the update (the gradients' norm is far above 2) and decay mattered.
    assert not np.allclose(by_leaf["Logits"]["Conv"]["kernel"], params["Logits"]["Conv"]["kernel"])


@pytest.mark.slow
def test_train_step_compiles_two_programs_once():
    mesh = Mesh(np.array(jax.devices()[:1]), (steps.AXIS,))
    train._COMPILED.clear()  # this test counts the compilations of a fresh train step
    initialize, step, _ = train.compiled_programs([settings.validate(tiny_config())], 100, 10,
                                                  mesh)
    state = initialize(steps.seed_keys([0], False))
    rng = np.random.RandomState(0)
    batch = steps.to_global({"image": rng.randint(0, 256, (16, 28, 28, 1)).astype(np.uint8),
                             "label": rng.randint(0, 10, 16).astype(np.int32)},
                            NamedSharding(mesh, P(steps.AXIS)))
    compiled = []
    listener = lambda event, seconds, **_: compiled.append(event)  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        state, metrics = step(state, batch)
        first = compiled.count("/jax/core/compile/backend_compile_duration")
        state, metrics = step(state, batch)
        second = compiled.count("/jax/core/compile/backend_compile_duration") - first
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert (first, second) == (2, 0)
    assert int(state.step) == 2
    assert sorted(metrics) == ["accuracy", "grad_norm", "learning_rate", "loss"]
    assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) > 0
