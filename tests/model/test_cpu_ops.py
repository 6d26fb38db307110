"""`inception_flax.model.cpu_ops` (the CPU lowering, chosen by `model.lowering`) against XLA's own convolution and max pooling:
outputs and gradients of each op, then of the whole network."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from inception_flax.model import lowering, layers, network, cpu_ops
from inception_flax.model.architecture import get_preset

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("kernel,stride,padding,size", [
    ((3, 3), 1, "SAME", (17, 18)), ((3, 3), 2, "VALID", (35, 35)), ((1, 7), 1, "SAME", (9, 9)),
    ((7, 1), 1, "SAME", (9, 10)), ((5, 5), 1, "SAME", (8, 8)), ((3, 3), 2, "SAME", (8, 9)),
    ((1, 1), 1, "SAME", (5, 5)), ((1, 1), 2, "VALID", (9, 9)), ((7, 7), 2, "VALID", (19, 19)),
    ((3, 3), 1, ((2, 0), (1, 3)), (6, 7)),
])
def test_conv_as_matmul_matches_xla_convolution(kernel, stride, padding, size):
    rng = np.random.RandomState(0)
    x, w = rng.randn(2, *size, 5), rng.randn(*kernel, 5, 6)

    def xla(x, w):
        return lax.conv_general_dilated(x, w, (stride, stride), padding,
                                        dimension_numbers=NHWC)

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
    matmul = lambda x, w: cpu_ops.conv_as_matmul(x, w, (stride, stride), padding)  # noqa: E731
    np.testing.assert_allclose(matmul(x, w), xla(x, w), rtol=1e-12, atol=1e-12)
    want_grads = jax.grad(loss(xla), (0, 1))(x, w)
    got_grads = jax.grad(loss(matmul), (0, 1))(x, w)
    for g, r in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


def test_conv_as_matmul_refuses_what_it_does_not_compute():
    x, w = jnp.zeros((1, 5, 5, 4)), jnp.zeros((3, 3, 2, 4))  # a grouped kernel
    with pytest.raises(ValueError, match="lowering='xla'"):
        cpu_ops.conv_as_matmul(x, w, (1, 1), "SAME")


@pytest.mark.parametrize("size,stride,padding", [
    ((9, 10), 2, "VALID"), ((10, 10), 2, "VALID"), ((9, 9), 2, "SAME"), ((8, 7), 1, "SAME"),
    ((11, 11), 3, "VALID"),
])
def test_max_pool_gradient_goes_where_xla_sends_it(size, stride, padding):
    # Integer values after a ReLU: many ties (all-zero windows, repeated maxima), so the
    # choice of which element takes the gradient shows; integer gradients make sums exact.
    rng = np.random.RandomState(1)
    x = np.maximum(rng.randint(-3, 4, (2, *size, 3)), 0).astype(np.float64)
    want, vjp = jax.vjp(lambda x: nn.max_pool(x, (3, 3), (stride, stride), padding), x)
    got, ours = jax.vjp(lambda x: cpu_ops.max_pool(x, (3, 3), stride, padding), x)
    g = rng.randint(1, 9, want.shape).astype(np.float64)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ours(g)[0], vjp(g)[0])


def test_backends_choose_the_lowering():
    assert lowering.choose("auto", "cpu") == lowering.Lowering(
        "matmul", "slices", "written_out", "direct", (("xla_backend_optimization_level", 1),))
    assert lowering.choose("auto", "gpu") == lowering.Lowering()
    assert lowering.choose("xla", "cpu").convolution == "xla"
    assert lowering.choose("matmul", "tpu").convolution == "matmul"


@pytest.mark.slow
def test_every_lowering_builds_the_same_network():
    """Logits, moving averages and every gradient of a small network agree between the
    choices of `lowering.Lowering`: XLA's convolutions with our batch norm and parameter
    look-up (the reference), the matmul lowering, and flax's batch norm (autodiff's gradient,
    as `test_batch_norm_matches_flax` checks against ours) with flax's parameter look-up, which
    also give the same variables. Float64 activations; the gradients are float32, as the
    parameters are. Figure 9's variant has a max pool outside the branches besides the stem's
    and the grid reductions'; one module per grid keeps the programs small."""
    size = 75
    base = get_preset("grid_fig9_pool_first", depth_multiplier=0.25, num_classes=7,
                      dtype="float64", aux_head="none", modules_per_grid=(1, 1, 1))
    xla, matmul, flax_ways = (network.Inception(base, layers.Runtime(lowering)) for lowering in (
        lowering.choose("xla"), lowering.choose("matmul"),
        lowering.Lowering(batch_norm="flax", parameters="flax")))
    images = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3), jnp.float64)
    variables = xla.init(jax.random.PRNGKey(1), images)
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(
        jax.eval_shape(flax_ways.init, jax.random.PRNGKey(1), images))

    def loss(model):
        def f(params):
            (logits, ends), updates = model.apply(
                {"params": params, "batch_stats": variables["batch_stats"]}, images,
                train=True, return_endpoints=True, mutable=["batch_stats"],
                rngs={"dropout": jax.random.PRNGKey(2)})
            return jnp.sum(logits ** 2) + jnp.sum(ends["Mixed_6b"] ** 2), updates
        return jax.jit(jax.value_and_grad(f, has_aux=True))(variables["params"])

    (want, want_stats), want_grads = loss(xla)
    for other in (matmul, flax_ways):
        (got, got_stats), got_grads = loss(other)
        np.testing.assert_allclose(got, want, rtol=1e-10)
        for g, w in zip(jax.tree_util.tree_leaves(got_stats),
                        jax.tree_util.tree_leaves(want_stats)):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
        for g, r in zip(jax.tree_util.tree_leaves(got_grads),
                        jax.tree_util.tree_leaves(want_grads)):
            np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-7 * np.abs(r).max())


@pytest.mark.parametrize("relu", [True, False])
def test_batch_norm_matches_flax(relu):
    """`layers.BatchNorm` (the gradient written out in `cpu_ops.batch_norm`) against
    `flax.linen.BatchNorm(use_scale=False)` and `nn.relu`: output, moving averages and the
    gradients of input and bias in training; output in evaluation. One channel is constant,
    so that its variance is 0 (and E[x²] - E[x]² may round below it)."""
    rng = np.random.RandomState(0)
    x = rng.normal(1.0, 3.0, (4, 5, 6, 7))
    x[..., 3] = 0.7
    bias = rng.normal(size=7)
    stats = {"mean": rng.normal(size=7), "var": rng.uniform(0.5, 2.0, 7)}
    cotangent = rng.normal(size=x.shape)
    ours = layers.BatchNorm(0.9, 1e-3, None, relu)
    theirs = nn.BatchNorm(momentum=0.9, epsilon=1e-3, use_scale=False, dtype=jnp.float64,
                          param_dtype=jnp.float64)

    def run(module, after, train):
        def f(x, bias):
            y, updates = module.apply({"params": {"bias": bias}, "batch_stats": stats}, x,
                                      **train, mutable=["batch_stats"])
            return after(y), updates["batch_stats"]
        return jax.vjp(f, x, bias, has_aux=True)

    relu_or_not = nn.relu if relu else (lambda y: y)
    (got, got_vjp, got_stats), (want, want_vjp, want_stats) = (
        run(ours, lambda y: y, {"train": True}),
        run(theirs, relu_or_not, {"use_running_average": False}))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for name in ("mean", "var"):
        np.testing.assert_allclose(got_stats[name], want_stats[name], rtol=1e-12, atol=1e-12)
    for g, w in zip(got_vjp(cotangent), want_vjp(cotangent)):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)
    (got, _, _), (want, _, _) = (run(ours, lambda y: y, {"train": False}),
                                 run(theirs, relu_or_not, {"use_running_average": True}))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
