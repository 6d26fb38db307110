"""Full-size check against the oracle: Keras's InceptionV3 on the JAX backend, its random
weights imported with `from_keras`, gives the same logits as Keras."""

import os

import jax
import numpy as np
import pytest

from inception_flax import convert, cost, models

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def keras_model():
    assert keras.backend.backend() == "jax"
    model = keras.applications.InceptionV3(weights=None, classifier_activation=None)
    # Random batch-norm statistics and offsets, so that every imported tensor matters.
    rng = np.random.RandomState(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            beta, mean, var = layer.get_weights()
            layer.set_weights([rng.normal(0, 0.1, beta.shape).astype("float32"),
                               rng.normal(0, 0.1, mean.shape).astype("float32"),
                               rng.uniform(0.5, 1.5, var.shape).astype("float32")])
    return model


@pytest.mark.slow
@pytest.mark.full_size
def test_logits_match_keras(keras_model):
    images = np.random.RandomState(1).uniform(-1, 1, (2, 299, 299, 3)).astype("float32")
    expected = np.asarray(keras_model(images, training=False))
    variables = convert.from_keras(keras_model)
    logits = np.asarray(models.create().apply(variables, images, train=False))
    difference = np.abs(logits - expected).max() / np.abs(expected).max()
    print(f"largest logit difference to Keras: {difference:.2g} of its largest logit")
    assert difference <= 1e-4
    # The same network at a non-square size Keras accepts too.
    images = images[:, :200, :260]
    resized = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg",
                                             input_shape=(200, 260, 3))
    resized.set_weights(keras_model.get_weights()[:len(resized.get_weights())])
    _, ends = models.create().apply(variables, images, return_endpoints=True)
    np.testing.assert_allclose(ends["AvgPool_1a"][:, 0, 0], resized(images, training=False),
                               rtol=1e-4, atol=1e-4 * np.abs(ends["AvgPool_1a"]).max())


@pytest.mark.slow
@pytest.mark.full_size
def test_parameter_counts_equal_keras(keras_model):
    report = cost.cost(models.create().config, 299)
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert report.total.params == trainable
    assert report.total.params + report.total.batch_norm_statistics == \
        keras_model.count_params()


@pytest.mark.slow
def test_from_saved_file_and_headless_weights(keras_model, tmp_path):
    path = os.path.join(tmp_path, "inception.keras")
    keras_model.save(path)
    weights = os.path.join(tmp_path, "notop.weights.h5")
    headless = keras.applications.InceptionV3(weights=None, include_top=False)
    headless.set_weights(keras_model.get_weights()[:len(headless.get_weights())])
    headless.save_weights(weights)
    from_file = convert.from_keras(path)
    live = convert.from_keras(keras_model)
    leaves = jax.tree_util.tree_leaves
    for a, b in zip(leaves(from_file), leaves(live)):
        np.testing.assert_array_equal(a, b)
    notop = convert.from_keras(weights, rng=jax.random.PRNGKey(5))
    stem = ["params", "Mixed_7c", "Branch_0", "Conv2d_0a_1x1", "Conv", "kernel"]
    get = lambda tree: tree[stem[0]][stem[1]][stem[2]][stem[3]][stem[4]][stem[5]]  # noqa: E731
    np.testing.assert_array_equal(get(notop), get(live))
    with pytest.raises(ValueError, match="released network only"):
        convert.from_keras(keras_model, models.create(stem="7x7").config)
    with pytest.raises(FileNotFoundError):
        convert.from_keras(os.path.join(tmp_path, "missing.h5"))
