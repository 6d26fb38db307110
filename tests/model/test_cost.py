"""The cost model against independent references: XLA's own cost analysis, hand arithmetic,
the parameter tree Flax builds, and the published 5.7 G multiply-adds of Inception-v3."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jex_core

from inception_flax.model import cost, network
from inception_flax.model.architecture import get_preset


def xla_conv_flops(fn, *args) -> float:
    """XLA's cost analysis of every convolution and dot in the program `fn(*args)` traces to,
    each compiled on its own with the operands and attributes it has in the program."""
    total = 0.0

    def visit(jaxpr):
        nonlocal total
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
                operands = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars]
                op = lambda *a, eqn=eqn: eqn.primitive.bind(*a, **eqn.params)  # noqa: E731
                total += jax.jit(op).lower(*operands).compile().cost_analysis()["flops"]
            for param in eqn.params.values():
                for sub in param if isinstance(param, (tuple, list)) else (param,):
                    if isinstance(sub, jex_core.ClosedJaxpr):
                        visit(sub.jaxpr)
                    elif isinstance(sub, jex_core.Jaxpr):
                        visit(sub)

    visit(jax.make_jaxpr(fn)(*args).jaxpr)
    return total


def abstract_variables(model, size):
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))


@pytest.mark.parametrize("preset,size,overrides", [
    ("inception_v3", 299, {}),
    ("inception_v3", 131, {"depth_multiplier": 0.25, "module_17_n": 5}),
    ("inception_v2_basic", 120, {"depth_multiplier": 0.5}),
    ("inception_v2_table1", 107, {"depth_multiplier": 0.25, "module_17": "full"}),
    ("grid_fig9_module_first", 107, {"depth_multiplier": 0.25, "module_8": "plain"}),
    ("grid_fig9_pool_first", 107, {"depth_multiplier": 0.25, "module_17": "3x3"}),
    ("receptive_field_79", 79, {"depth_multiplier": 0.5}),
    ("receptive_field_151", 151, {"depth_multiplier": 0.5, "num_classes": 10}),
    ("inception_v3", (150, 200), {"depth_multiplier": 0.25}),
])
@pytest.mark.slow
def test_cost_agrees_with_xla(preset, size, overrides):
    config = get_preset(preset, lowering="xla", **overrides)
    model = network.Inception(config)
    hw = (size, size) if isinstance(size, int) else size
    images = jnp.zeros((2, *hw, 3))
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), images)
    xla = xla_conv_flops(lambda v, x: model.apply(v, x, train=False), variables, images)
    report = cost.cost(config, size)
    # XLA counts the multiply-adds on the image (not on SAME padding's zeros), two flops
    # each, for the batch of 2.
    ours = 2 * 2 * report.total.macs_on_image
    assert abs(xla - ours) <= 0.02 * xla, (xla, ours)
    # The whole compiled forward pass does this work and a little elementwise work besides.
    whole = jax.jit(lambda v, x: model.apply(v, x)).lower(variables, images).compile()
    flops = whole.cost_analysis()["flops"]
    assert ours <= flops * 1.001 and flops <= ours * 1.05
    # The matmul lowering multiplies SAME padding's zeros too (im2col patches include them):
    # XLA's count of its dots is then every tap, the `macs` column.
    matmul = network.Inception(config.replace(lowering="matmul"))
    xla = xla_conv_flops(lambda v, x: matmul.apply(v, x, train=False), variables, images)
    assert abs(xla - 2 * 2 * report.total.macs) <= 1e-6 * xla, (xla, report.total.macs)


def test_inception_v3_cost_matches_published_figures():
    report = cost.cost(get_preset("inception_v3"), 299)
    assert 5.6e9 <= report.total.macs <= 5.8e9  # "about 5.7 G" (PAPER_NOTES, table 3)
    # Learnable parameters counted from the variables Flax creates (a second path).
    variables = abstract_variables(network.create(), 299)
    leaves = lambda tree: sum(x.size for x in jax.tree_util.tree_leaves(tree))  # noqa: E731
    aux = leaves(variables["params"]["AuxLogits"])
    assert report.total.params == leaves(variables["params"]) - aux
    assert report.aux_head.params == aux
    assert report.total.batch_norm_statistics == (
        leaves(variables["batch_stats"]) - leaves(variables["batch_stats"]["AuxLogits"]))
    # Keras's count for keras.applications.InceptionV3 (test_convert checks it live).
    assert report.total.params + report.total.batch_norm_statistics == 23_851_784


def test_padding_taps_by_hand():
    # 3×3 SAME on 8 rows: the first and last output rows lose one tap each.
    assert cost._taps_on_image(8, 3, 1, 8, "SAME") == 8 * 3 - 2
    # 3×3/2 SAME on 8 → 4 outputs: TF pads 1 at the end only (total padding 1).
    assert cost._taps_on_image(8, 3, 2, 4, "SAME") == 3 * 4 - 1
    assert cost._taps_on_image(9, 3, 2, 4, "VALID") == 12


def test_a_layer_the_table_does_not_count_is_an_error():
    """A module of a new type holding parameters cannot drop out of the costs unnoticed."""
    params = {"Stem": {"Conv2d_1a_3x3": {"Conv": {"kernel": jnp.zeros((3, 3, 3, 32))}}},
              "Mixed_9z": {"Dense_0": {"kernel": jnp.zeros((4, 4))}}}
    counted = [l for l in cost.cost(get_preset("inception_v3"), 299).layers
               if l.name == "Stem/Conv2d_1a_3x3"]
    cost._check_every_parameter_counted({k: params[k] for k in ("Stem",)}, counted)
    with pytest.raises(TypeError, match="counts no layer at Mixed_9z, which hold"):
        cost._check_every_parameter_counted(params, counted)


def test_receptive_field_networks_cost():
    base = cost.cost(get_preset("receptive_field_299"), 299).total.macs
    net_151 = cost.cost(get_preset("receptive_field_151"), 151)
    net_79 = cost.cost(get_preset("receptive_field_79"), 79)
    # 151 with stride 1 reaches the same 149×149 grid as 299 with stride 2: same cost.
    assert net_151.total.macs == base
    # 79 without the stride and the pool: the stem runs at 77/75/75/75/73 instead of
    # 149/147/147/73/71, and the 35×35 modules at 36×36. By hand, for the stem:
    layers = {l.name: l for l in net_79.layers}
    assert layers["Stem/Conv2d_2b_3x3"].macs == 75 * 75 * 9 * 32 * 64
    assert layers["Stem/Conv2d_4a_3x3"].macs == 73 * 73 * 9 * 80 * 192
    assert layers["Mixed_5b/Branch_0/Conv2d_0a_1x1"].output_shape == (36, 36, 64)
    assert "Stem/MaxPool_3a_3x3" not in layers
    # At fixed cost the solver closes the gap to within 1%.
    solved = cost.solve_depth_multiplier(get_preset("receptive_field_79"), 79, base)
    assert abs(cost.cost(solved, 79).total.macs - base) <= 0.01 * base


@pytest.mark.parametrize("preset,size", [("grid_fig9_module_first", 299),
                                         ("receptive_field_79", 79)])
def test_solver_matches_budget(preset, size):
    target = cost.cost(get_preset("inception_v3"), 299).total.macs
    solved = cost.solve_depth_multiplier(get_preset(preset), size, target)
    assert abs(cost.cost(solved, size).total.macs - target) <= 0.01 * target
    assert (solved.depth_multiplier < 1) == (cost.cost(get_preset(preset), size).total.macs
                                             > target)


def test_solver_refuses_impossible_budget():
    with pytest.raises(ValueError, match="no depth_multiplier"):
        cost.solve_depth_multiplier(get_preset("inception_v3"), 299, 1e6)


def test_layer_rows_are_hand_checkable():
    layers = {l.name: l for l in cost.cost(get_preset("inception_v3"), 299).layers}
    conv = layers["Mixed_5b/Branch_1/Conv2d_0b_5x5"]
    assert conv.kernel == (5, 5) and conv.output_shape == (35, 35, 64)
    assert conv.params == 5 * 5 * 48 * 64 + 64  # kernel + batch-norm offset
    assert conv.macs == 35 * 35 * 5 * 5 * 48 * 64
    logits = layers["Logits/Conv2d_1c_1x1"]
    assert logits.params == 2048 * 1000 + 1000 and logits.macs == 2048 * 1000
    assert np.all([l.macs == 0 for l in layers.values() if l.type.endswith("pool")])
