"""The released network's structure and the model's public behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inception_flax.model import network
from inception_flax.model.architecture import InceptionConfig, get_preset


def shapes(model, size, train=False):
    images = jnp.zeros((1, size, size, 3) if isinstance(size, int) else (1, *size, 3))
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), images)
    if train:
        fn = lambda v, x: model.apply(v, x, train=True, return_endpoints=True,  # noqa: E731
                                      mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(1)})[0]
    else:
        fn = lambda v, x: model.apply(v, x, return_endpoints=True)  # noqa: E731
    logits, endpoints = jax.eval_shape(fn, variables, images)
    return variables, logits, {k: v.shape[1:] for k, v in endpoints.items()}


def test_tf_slim_endpoints_and_shapes():
    # TF-slim's inception_v3_base docstring and table 1: the grid and width of every block.
    _, logits, ends = shapes(network.create(), 299, train=True)
    expected = {
        "Conv2d_1a_3x3": (149, 149, 32), "Conv2d_2a_3x3": (147, 147, 32),
        "Conv2d_2b_3x3": (147, 147, 64), "MaxPool_3a_3x3": (73, 73, 64),
        "Conv2d_3b_1x1": (73, 73, 80), "Conv2d_4a_3x3": (71, 71, 192),
        "MaxPool_5a_3x3": (35, 35, 192), "Mixed_5b": (35, 35, 256), "Mixed_5c": (35, 35, 288),
        "Mixed_5d": (35, 35, 288), "Mixed_6a": (17, 17, 768), "Mixed_6b": (17, 17, 768),
        "Mixed_6c": (17, 17, 768), "Mixed_6d": (17, 17, 768), "Mixed_6e": (17, 17, 768),
        "Mixed_7a": (8, 8, 1280), "Mixed_7b": (8, 8, 2048), "Mixed_7c": (8, 8, 2048),
        "AuxLogits": (1000,), "AvgPool_1a": (1, 1, 2048), "PreLogits": (1, 1, 2048),
        "Logits": (1000,), "Predictions": (1000,),
    }
    assert ends == expected
    assert logits.shape == (1, 1000)


def test_parameter_names_are_tf_slims():
    variables, _, _ = shapes(network.create(), 299)
    params = variables["params"]
    assert params["Mixed_5c"]["Branch_1"]["Conv_1_0c_5x5"]["Conv"]["kernel"].shape == (5, 5, 48, 64)
    assert params["Mixed_6a"]["Branch_0"]["Conv2d_1a_1x1"]["Conv"]["kernel"].shape == (3, 3, 288, 384)
    assert "Conv2d_0c_3x1" in params["Mixed_7c"]["Branch_1"]
    assert "Conv2d_0b_3x1" in params["Mixed_7b"]["Branch_1"]
    # Batch norm has an offset but no learned scale; convolutions have no bias.
    conv = params["Stem"]["Conv2d_1a_3x3"]
    assert set(conv["BatchNorm"]) == {"bias"} and set(conv["Conv"]) == {"kernel"}
    assert set(variables["batch_stats"]["Stem"]["Conv2d_1a_3x3"]["BatchNorm"]) == {"mean", "var"}
    aux = params["AuxLogits"]
    assert aux["Conv2d_2a_5x5"]["Conv"]["kernel"].shape == (5, 5, 128, 768)
    assert aux["Conv2d_2b_1x1"]["Conv"]["kernel"].shape == (1, 1, 768, 1000)


@pytest.mark.slow
def test_any_input_size_and_the_minimum():
    model = network.create(depth_multiplier=0.25, num_classes=7)
    for size in (75, (75, 131), (200, 90), 331):
        _, logits, _ = shapes(model, size)
        assert logits.shape == (1, 7)
    assert network.min_input_size(model.config) == 75  # as Keras's InceptionV3 documents
    with pytest.raises(ValueError, match=r"at least 75×75 pixels"):
        shapes(model, (74, 200))
    # Training also runs the auxiliary head, whose 5×5/3 pool needs a 5×5 Mixed_6e.
    assert network.min_input_size(model.config, train=True) == 107
    with pytest.raises(ValueError, match=r"at least 107×107"):
        shapes(model, 106, train=True)
    _, logits, ends = shapes(model, 107, train=True)
    assert ends["AuxLogits"] == (7,)
    with pytest.raises(ValueError, match="4-D NHWC"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((75, 75, 3)))


def test_config_errors():
    with pytest.raises(ValueError, match="depth_multiplier is not greater than zero"):
        InceptionConfig(depth_multiplier=0)
    with pytest.raises(ValueError, match="depth_multiplier is not greater than zero"):
        network.create(depth_multiplier=-1.0)
    with pytest.raises(ValueError, match="unknown InceptionConfig field.*valid fields"):
        network.create(width=2)
    with pytest.raises(ValueError, match="choose one of 'fig10'"):
        network.create(grid_reduction="fig11")
    with pytest.raises(ValueError, match="odd n >= 3"):
        network.create(module_17_n=4)
    with pytest.raises(ValueError, match="unknown preset"):
        network.create("inception_v4")
    assert hash(get_preset("inception_v3")) == hash(InceptionConfig())


@pytest.mark.slow
def test_inference_training_and_dtypes():
    model = network.create(depth_multiplier=0.25, num_classes=5, dropout_rate=0.5, lowering="xla",
                          modules_per_grid=(1, 1, 1))  # small: it runs op by op
    images = jax.random.uniform(jax.random.PRNGKey(0), (2, 107, 107, 3), minval=-1, maxval=1)
    variables = model.init(jax.random.PRNGKey(0), images, train=False)
    assert "AuxLogits" in variables["params"]  # `init` in inference mode can still train
    logits = model.apply(variables, images)
    assert logits.shape == (2, 5) and logits.dtype == jnp.float32
    np.testing.assert_allclose(logits, model.apply(variables, images, train=False))

    def train(seed):
        return model.apply(variables, images, train=True, return_endpoints=True,
                           mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(seed)})
    (logits_a, ends), updates = train(1)
    (logits_b, _), _ = train(2)
    assert not np.allclose(logits_a, logits_b)  # dropout differs per rng
    assert ends["AuxLogits"].shape == (2, 5)
    old = variables["batch_stats"]["Stem"]["Conv2d_1a_3x3"]["BatchNorm"]["mean"]
    new = updates["batch_stats"]["Stem"]["Conv2d_1a_3x3"]["BatchNorm"]["mean"]
    assert not np.allclose(old, new)

    half = network.create(depth_multiplier=0.25, num_classes=5, dtype="bfloat16", lowering="xla",
                         modules_per_grid=(1, 1, 1))
    half_vars = half.init(jax.random.PRNGKey(0), images)
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(half_vars))
    half_logits, ends = half.apply(half_vars, images, return_endpoints=True)
    assert half_logits.dtype == jnp.float32 and ends["Mixed_7b"].dtype == jnp.bfloat16
    # Same parameters, same network: bfloat16 logits follow float32's closely.
    np.testing.assert_allclose(half_logits, model.apply(half_vars, images), atol=0.1, rtol=0.1)


def test_parameters_of_another_variant_are_refused_by_name():
    images = jnp.zeros((1, 75, 75, 3))
    narrow = network.create(depth_multiplier=0.25, num_classes=7, aux_head="none")
    wide = network.create(depth_multiplier=0.5, num_classes=7, aux_head="none")
    variables = jax.eval_shape(narrow.init, jax.random.PRNGKey(0), images)
    # min_depth=16 floors both widths' first layer; the second differs.
    with pytest.raises(ValueError, match=r"Stem/Conv2d_2b_3x3/Conv/kernel has shape "
                                         r"\(3, 3, 16, 16\), but this model needs "
                                         r"\(3, 3, 16, 32\)"):
        jax.eval_shape(wide.apply, variables, images)
