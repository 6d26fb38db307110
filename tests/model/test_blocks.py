"""Each ablation knob against a hand calculation of what it changes (figures 2, 4-10, tables
1-3). Parameter counts come from the variables Flax creates, multiply-adds from the cost
table's row of the changed layer; the expected figures are worked out here by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inception_flax.model import cost, network
from inception_flax.model.architecture import get_preset


def variables(config, size=299):
    model = network.Inception(config)
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))


def n_params(tree):
    return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def rows(config, size=299):
    return {l.name: l for l in cost.cost(config, size).layers}


def conv(k_h, k_w, c_in, c_out):
    """Parameters of a conv + batch-norm offset."""
    return k_h * k_w * c_in * c_out + c_out


RELEASED = get_preset("inception_v3")


def kernels(config, scope, size=299):
    """The kernel sizes of the convolutions in one scope, from the cost table."""
    return sorted(l.kernel for n, l in rows(config, size).items()
                  if n.startswith(scope + "/") and l.type == "conv")


@pytest.mark.parametrize("module,fives,threes", [
    ("released", 1, 2), ("fig4", 1, 1), ("fig5", 0, 3), ("released_5x5_as_3x3", 0, 4)])
def test_module_35_structure(module, fives, threes):
    found = kernels(RELEASED.replace(module_35=module), "Mixed_5b")
    assert found.count((5, 5)) == fives and found.count((3, 3)) == threes
    assert found.count((1, 1)) == 4  # Branch_0, the two reductions, the pool's projection


def test_table1_preset_has_figure_5_modules():
    found = kernels(get_preset("inception_v2_table1"), "Mixed_5b")
    assert found.count((5, 5)) == 0 and found.count((3, 3)) == 3


def test_figure_4_to_5_replaces_only_the_5x5():
    fig4 = variables(RELEASED.replace(module_35="fig4"))["params"]["Mixed_5b"]
    fig5 = variables(RELEASED.replace(module_35="fig5"))["params"]["Mixed_5b"]
    # Branch by branch: only Branch_1 differs, its 5×5 (48 → 64) now 3×3 48 → 64 → 3×3 64 → 64.
    for branch in ("Branch_0", "Branch_2", "Branch_3"):
        assert n_params(fig4[branch]) == n_params(fig5[branch])
    assert n_params(fig4["Branch_2"]) == conv(1, 1, 192, 64) + conv(3, 3, 64, 96)
    assert n_params(fig4["Branch_1"]) == conv(1, 1, 192, 48) + conv(5, 5, 48, 64)
    assert n_params(fig5["Branch_1"]) == conv(1, 1, 192, 48) + conv(3, 3, 48, 64) + \
        conv(3, 3, 64, 64)
    macs = {m: sum(l.macs for n, l in rows(RELEASED.replace(module_35=m)).items()
                   if n.startswith("Mixed_5b/")) for m in ("fig4", "fig5")}
    # By hand, at 35×35: 25·48·64 taps·channels for the 5×5, 9·48·64 + 9·64·64 for the two
    # 3×3: 35² · (76,800 − 27,648 − 36,864) = 1,225 · 12,288.
    assert macs["fig4"] - macs["fig5"] == 15_052_800
    # The module still outputs 64 + 64 + 96 + 32 channels.
    assert rows(RELEASED.replace(module_35="fig5"))[
        "Mixed_5c/Branch_0/Conv2d_0a_1x1"].input_shape == (35, 35, 256)


def test_old_module_35_name_says_what_to_use():
    with pytest.raises(ValueError, match="released_5x5_as_3x3.*fig5"):
        RELEASED.replace(module_35="double_3x3")


def test_modules_per_grid():
    config = RELEASED.replace(modules_per_grid=(2, 5, 1))
    layers = rows(config)
    scopes = sorted({n.split("/")[0] for n in layers if n.startswith("Mixed_")})
    assert scopes == ["Mixed_5b", "Mixed_5c", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                      "Mixed_6e", "Mixed_6f", "Mixed_7a", "Mixed_7b"]
    # c = 128, 160, 160, 160, 192; the auxiliary head sits on the last 17×17 module.
    assert [layers[f"Mixed_6{x}/Branch_1/Conv2d_0a_1x1"].output_shape[-1]
            for x in "bcdef"] == [128, 160, 160, 160, 192]
    assert layers["AuxLogits/AvgPool_1a_5x5"].input_shape == (17, 17, 768)
    # Mixed_5c outputs 288 channels into Mixed_6a; one 8×8 module feeds the logits 2048.
    assert layers["Mixed_6a/Branch_0/Conv2d_1a_1x1"].input_shape == (35, 35, 288)
    assert layers["Logits/Conv2d_1c_1x1"].input_shape == (1, 1, 2048)
    assert rows(get_preset("inception_v2_table1"))["Mixed_6f/Branch_0/Conv2d_0a_1x1"]
    with pytest.raises(ValueError, match="modules_per_grid"):
        RELEASED.replace(modules_per_grid=(3, 0, 2))


@pytest.mark.parametrize("mode,n", [("asymmetric", 7), ("asymmetric", 3), ("asymmetric", 5),
                                    ("full", 7), ("full", 5), ("3x3", 7)])
def test_module_17_factorization(mode, n):
    config = RELEASED.replace(module_17=mode, module_17_n=n)
    params = variables(config)["params"]["Mixed_6b"]  # c = 128
    c = 128
    if mode == "asymmetric":  # (kernel height, width, filters in, filters out) per layer
        branch_1 = [(1, n, c, c), (n, 1, c, 192)]
        branch_2 = [(n, 1, c, c), (1, n, c, c), (n, 1, c, c), (1, n, c, 192)]
    else:
        k = n if mode == "full" else 3
        branch_1 = [(k, k, c, 192)]
        branch_2 = [(k, k, c, c), (k, k, c, 192)]
    reduce = (1, 1, 768, c)
    assert n_params(params["Branch_1"]) == sum(conv(*l) for l in [reduce] + branch_1)
    assert n_params(params["Branch_2"]) == sum(conv(*l) for l in [reduce] + branch_2)
    macs = sum(l.macs for name, l in rows(config).items()
               if name.startswith("Mixed_6b/Branch_2/"))
    assert macs == 17 * 17 * sum(kh * kw * i * o for kh, kw, i, o in [reduce] + branch_2)
    # Mixed_7a keeps the released 1×7 → 7×1 whatever module_17 says.
    assert "Conv2d_0b_1x7" in variables(config)["params"]["Mixed_7a"]["Branch_1"]


def test_module_8_expanded_vs_plain():
    expanded = variables(RELEASED)["params"]["Mixed_7b"]
    plain_vars = variables(RELEASED.replace(module_8="plain"))
    plain = plain_vars["params"]["Mixed_7b"]
    # Figure 7 runs 1×3 and 3×1 side by side on the 1×1's output; plain runs them in series.
    assert n_params(expanded["Branch_1"]) == conv(1, 1, 1280, 384) + 2 * conv(1, 3, 384, 384)
    assert n_params(plain["Branch_1"]) == conv(1, 1, 1280, 384) + conv(1, 3, 384, 384) + \
        conv(3, 1, 384, 384)
    # Output widths: 320 + 768 + 768 + 192 = 2048 expanded, 320 + 384 + 384 + 192 = 1280 plain.
    assert plain_vars["params"]["Mixed_7c"]["Branch_0"]["Conv2d_0a_1x1"]["Conv"]["kernel"].shape \
        == (1, 1, 1280, 320)
    assert plain_vars["params"]["Logits"]["Conv2d_1c_1x1"]["Conv"]["kernel"].shape == \
        (1, 1, 1280, 1000)


def intermediates(config, images, *names):
    """The outputs of the named layers, from one jitted forward pass."""
    model = network.Inception(config.replace(lowering="xla"))

    def forward(images):
        params = model.init(jax.random.PRNGKey(0), images)
        _, state = model.apply(params, images, capture_intermediates=True,
                               mutable=["intermediates"])
        return state["intermediates"]
    captured = jax.jit(forward)(images)
    outputs = []
    for name in names:
        node = captured
        for key in name.split("/"):
            node = node[key]
        outputs.append(np.asarray(node["__call__"][0]))
    return outputs


@pytest.mark.slow
def test_linear_factorization_removes_the_first_relu_only():
    config = RELEASED.replace(depth_multiplier=0.25, factorization_activation="linear",
                              modules_per_grid=(1, 1, 1))
    images = jax.random.normal(jax.random.PRNGKey(3), (1, 75, 75, 3))
    # Same parameters as the released network (figure 2 changes no weights).
    assert n_params(variables(config, 75)) == n_params(
        variables(config.replace(factorization_activation="relu"), 75))
    first, second, first_7, stem = intermediates(
        config, images, "Mixed_5b/Branch_2/Conv2d_0b_3x3", "Mixed_5b/Branch_2/Conv2d_0c_3x3",
        "Mixed_6b/Branch_1/Conv2d_0b_1x7", "Stem/Conv2d_1a_3x3")
    # The first of each pair in series is linear, the second keeps its ReLU (as every
    # convolution of the released network does).
    assert first.min() < 0 and second.min() >= 0
    assert first_7.min() < 0
    # The stem is not a factorization knob: its 3×3 stack keeps ReLU.
    assert stem.min() >= 0


def test_stem_7x7_table3_basic():
    params = variables(RELEASED.replace(stem="7x7"))["params"]["Stem"]
    assert n_params(params["Conv2d_1a_7x7"]) == conv(7, 7, 3, 64)
    assert "Conv2d_2a_3x3" not in params
    layer = rows(RELEASED.replace(stem="7x7"))["Stem/Conv2d_1a_7x7"]
    assert layer.output_shape == (147, 147, 64)  # (299 - 7) / 2 + 1
    assert layer.macs == 147 * 147 * 7 * 7 * 3 * 64
    released = rows(RELEASED)
    factorized = sum(released[f"Stem/{n}"].macs for n in
                     ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"))
    assert factorized == 149 * 149 * 27 * 32 + 147 * 147 * 9 * 32 * (32 + 64)


def test_stem_table1_as_printed():
    layers = rows(RELEASED.replace(stem="table1"))
    assert layers["Stem/Conv2d_3b_3x3"].output_shape == (71, 71, 80)
    assert layers["Stem/Conv2d_4a_3x3"].output_shape == (35, 35, 192)
    assert layers["Stem/Conv2d_4b_3x3"].output_shape == (35, 35, 288)
    assert layers["Stem/Conv2d_4b_3x3"].params == conv(3, 3, 192, 288)
    assert layers["Mixed_5b/Branch_0/Conv2d_0a_1x1"].input_shape == (35, 35, 288)
    assert "Stem/MaxPool_5a_3x3" not in layers


def test_table3_basic_is_table1s_network_with_a_7x7():
    """Table 3's ladder starts from table 1's network: "Inception-v2 basic" has table 1's
    stem with its three 3×3 as one 7×7, and the head without BN-auxiliary."""
    basic = get_preset("inception_v2_basic")
    assert basic == get_preset("inception_v2_table1").replace(stem="table1_7x7",
                                                              aux_head="plain")
    assert basic.module_35 == "fig5" and basic.modules_per_grid == (3, 5, 2)
    layers, table1 = rows(basic), rows(basic.replace(stem="table1"))
    assert layers["Stem/Conv2d_1a_7x7"].output_shape == (147, 147, 64)
    assert "Stem/Conv2d_2a_3x3" not in layers and "Stem/Conv2d_3b_1x1" not in layers
    for name in ("Stem/Conv2d_3b_3x3", "Stem/Conv2d_4a_3x3", "Stem/Conv2d_4b_3x3"):
        assert layers[name] == table1[name]  # table 1's layers after the first pool
    assert layers["Mixed_5b/Branch_0/Conv2d_0a_1x1"].input_shape == (35, 35, 288)
    assert get_preset("inception_v2_factorized_7x7") == basic.replace(stem="table1")


@pytest.mark.parametrize("mode", ["fig10", "fig9_pool_first", "fig9_module_first"])
def test_grid_reduction(mode):
    layers = rows(RELEASED.replace(grid_reduction=mode))
    first = layers["Mixed_6a/Branch_0/Conv2d_1a_1x1"]  # TF-slim's name for the 3×3 → 384
    grid = {"fig10": 17, "fig9_pool_first": 17, "fig9_module_first": 35}[mode]
    assert first.output_shape == (grid, grid, 384)
    assert first.macs == grid * grid * 9 * 288 * 384
    mixed_6a = sum(l.macs for n, l in layers.items() if n.startswith("Mixed_6a/"))
    if mode == "fig10":  # 3×3/2 384 | 1×1 64 at 35² → 3×3 96 at 35² → 3×3/2 96
        assert mixed_6a == 17 * 17 * 9 * 288 * 384 + 35 * 35 * (288 * 64 + 9 * 64 * 96) + \
            17 * 17 * 9 * 96 * 96
    elif mode == "fig9_pool_first":  # everything at 17² after the pool
        assert mixed_6a == 17 * 17 * (9 * 288 * 384 + 288 * 64 + 9 * 64 * 96 + 9 * 96 * 96)
        assert layers["Mixed_6a/MaxPool_0a_3x3"].output_shape == (17, 17, 288)
    else:  # everything at 35², then the pool
        assert mixed_6a == 35 * 35 * (9 * 288 * 384 + 288 * 64 + 9 * 64 * 96 + 9 * 96 * 96)
        assert layers["Mixed_6a/MaxPool_2a_3x3"].output_shape == (17, 17, 768)
    # Output width is 384 + 96 + 288 = 768 in all three.
    assert layers["Mixed_6b/Branch_0/Conv2d_0a_1x1"].input_shape == (17, 17, 768)
    assert layers["Mixed_7b/Branch_0/Conv2d_0a_1x1"].input_shape == (8, 8, 1280)


def test_receptive_field_stem():
    for rf, size, grid_1a, pool in ((299, 299, 149, True), (151, 151, 149, True),
                                    (79, 79, 77, False)):
        layers = rows(RELEASED.replace(receptive_field=rf), size)
        assert layers["Stem/Conv2d_1a_3x3"].stride == (2 if rf == 299 else 1)
        assert layers["Stem/Conv2d_1a_3x3"].output_shape == (grid_1a, grid_1a, 32)
        assert ("Stem/MaxPool_3a_3x3" in layers) == pool
        assert layers["Mixed_6b/Branch_0/Conv2d_0a_1x1"].input_shape[:2] == (17, 17)


@pytest.mark.parametrize("mode", ["none", "plain", "bn"])
def test_aux_head(mode):
    state = variables(RELEASED.replace(aux_head=mode))
    if mode == "none":
        assert "AuxLogits" not in state["params"]
        return
    aux = state["params"]["AuxLogits"]
    fc = aux["Conv2d_2a_5x5"]
    assert n_params(aux) == conv(1, 1, 768, 128) + conv(5, 5, 128, 768) + \
        (768 * 1000 + 1000)
    if mode == "bn":  # BN-auxiliary: the fully connected layer is batch normalized too
        assert set(fc) == {"Conv", "BatchNorm"} and set(fc["Conv"]) == {"kernel"}
        assert "Conv2d_2a_5x5" in state["batch_stats"]["AuxLogits"]
    else:
        assert set(fc) == {"Conv"} and set(fc["Conv"]) == {"kernel", "bias"}
        assert "Conv2d_2a_5x5" not in state["batch_stats"]["AuxLogits"]
    assert "BatchNorm" in aux["Conv2d_1b_1x1"]  # its convolution is normalized in both


def test_depth_multiplier_and_min_depth():
    half = variables(RELEASED.replace(depth_multiplier=0.5))["params"]
    assert half["Stem"]["Conv2d_1a_3x3"]["Conv"]["kernel"].shape == (3, 3, 3, 16)
    assert half["Mixed_5b"]["Branch_3"]["Conv2d_0b_1x1"]["Conv"]["kernel"].shape[-1] == 16
    assert half["Mixed_7c"]["Branch_2"]["Conv2d_0a_1x1"]["Conv"]["kernel"].shape[-1] == 224
    tiny = variables(RELEASED.replace(depth_multiplier=0.1, min_depth=8))["params"]
    # max(int(32 * 0.1), 8) = 8; max(int(448 * 0.1), 8) = 44
    assert tiny["Stem"]["Conv2d_1a_3x3"]["Conv"]["kernel"].shape[-1] == 8
    assert tiny["Mixed_7c"]["Branch_2"]["Conv2d_0a_1x1"]["Conv"]["kernel"].shape[-1] == 44
    ten = variables(RELEASED.replace(num_classes=10))["params"]
    assert ten["Logits"]["Conv2d_1c_1x1"]["Conv"]["kernel"].shape == (1, 1, 2048, 10)
