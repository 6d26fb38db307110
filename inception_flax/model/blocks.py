"""The blocks of Inception-v3, one Flax module per figure of the paper.

Layer and scope names are TF-slim's (`nets/inception_v3.py`), quirks included where its
checkpoints carry them (Mixed_5c's `Conv_1_0c_5x5`, Mixed_6a's 3×3 `Conv2d_1a_1x1`), so a
layer here, in a cost table and in a TF-slim checkpoint has one name. Each block reads the
config fields that change it and no others.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from inception_flax.model.architecture import InceptionConfig
from inception_flax.model.layers import Branch, Conv, Pool, Pooling, Runtime, apply_layer

AVG_POOL_3x3 = Pool("AvgPool_0a_3x3", "avg", (3, 3))


def concat_branches(module: nn.Module, branches, x, train: bool):
    """Applies `Branch_0` ... `Branch_k` to the same input and concatenates their outputs."""
    return jnp.concatenate(
        [Branch(tuple(layers), module.config, module.runtime, name=f"Branch_{i}")(x, train)
         for i, layers in enumerate(branches)], axis=-1)


class Stem(nn.Module):
    """The layers before the 35×35 grid (table 1). Reads `stem` and `receptive_field`.

    Released: Conv2d_1a_3x3 (32, /2, VALID) → Conv2d_2a_3x3 (32, VALID) → Conv2d_2b_3x3 (64)
    → MaxPool_3a_3x3 (/2) → Conv2d_3b_1x1 (80) → Conv2d_4a_3x3 (192, VALID) → MaxPool_5a_3x3
    (/2): 299×299×3 → 35×35×192. Returns the output and every layer's output by name.
    """

    config: InceptionConfig
    runtime: Runtime

    @nn.compact
    def __call__(self, x, train: bool):
        cfg, d = self.config, self.config.depth
        # Section 9: the 151 and 79 networks drop the stride of the first layer, and the 79
        # network drops the first max pool too.
        stride = 2 if cfg.receptive_field == 299 else 1
        if cfg.stem in ("7x7", "table1_7x7"):  # table 3, "Inception-v2 basic": one 7×7
            layers = [Conv("Conv2d_1a_7x7", d(64), (7, 7), stride, "VALID")]
        else:  # the factorized 7×7: three 3×3 (section 6)
            layers = [Conv("Conv2d_1a_3x3", d(32), (3, 3), stride, "VALID"),
                      Conv("Conv2d_2a_3x3", d(32), (3, 3), 1, "VALID"),
                      Conv("Conv2d_2b_3x3", d(64), (3, 3))]
        if cfg.receptive_field != 79:
            layers.append(Pool("MaxPool_3a_3x3", "max", (3, 3), 2, "VALID"))
        if cfg.stem in ("table1", "table1_7x7"):  # table 1 as printed: 73 → 71 → 35, 288 out
            layers += [Conv("Conv2d_3b_3x3", d(80), (3, 3), 1, "VALID"),
                       Conv("Conv2d_4a_3x3", d(192), (3, 3), 2, "VALID"),
                       Conv("Conv2d_4b_3x3", d(288), (3, 3))]
        else:  # released code: 73 → 73 → 71 → 35, 192 channels out
            layers += [Conv("Conv2d_3b_1x1", d(80), (1, 1), 1, "VALID"),
                       Conv("Conv2d_4a_3x3", d(192), (3, 3), 1, "VALID"),
                       Pool("MaxPool_5a_3x3", "max", (3, 3), 2, "VALID")]
        endpoints = {}
        for layer in layers:
            x = endpoints[layer.name] = apply_layer(layer, x, train, cfg, self.runtime)
        return x, endpoints


class Module35(nn.Module):
    """A 35×35 Inception module, Mixed_5b/5c/5d (figures 4 and 5). Reads `module_35` and
    `factorization_activation`.

    Released: Branch_0 1×1 64 | Branch_1 1×1 48 → 5×5 64 | Branch_2 1×1 64 → 3×3 96 → 3×3 96
    | Branch_3 3×3 avg pool → 1×1 `pool_features`. "fig4" (figure 4) drops Branch_2's second
    3×3; "fig5" (figure 5) is fig4 with Branch_1's 5×5 as 3×3 64 → 3×3 64;
    "released_5x5_as_3x3" is the released module with that same change.
    """

    config: InceptionConfig
    runtime: Runtime
    pool_features: int
    # TF-slim's names for Branch_1's 1×1 and 5×5 (its checkpoint calls them
    # `Conv2d_0b_1x1` and `Conv_1_0c_5x5` in Mixed_5c).
    branch_1_names: tuple[str, str] = ("Conv2d_0a_1x1", "Conv2d_0b_5x5")

    @nn.compact
    def __call__(self, x, train: bool):
        cfg, d = self.config, self.config.depth
        relu = cfg.factorization_activation == "relu"
        if cfg.module_35 in ("fig5", "released_5x5_as_3x3"):  # the 5×5 becomes two 3×3
            branch_1 = [Conv("Conv2d_0a_1x1", d(48), (1, 1)),
                        Conv("Conv2d_0b_3x3", d(64), (3, 3), relu=relu),
                        Conv("Conv2d_0c_3x3", d(64), (3, 3))]
        else:
            reduce, five = self.branch_1_names
            branch_1 = [Conv(reduce, d(48), (1, 1)), Conv(five, d(64), (5, 5))]
        branch_2 = [Conv("Conv2d_0a_1x1", d(64), (1, 1))]
        if cfg.module_35 in ("fig4", "fig5"):  # figures 4 and 5: a single 3×3
            branch_2.append(Conv("Conv2d_0b_3x3", d(96), (3, 3)))
        else:
            branch_2 += [Conv("Conv2d_0b_3x3", d(96), (3, 3), relu=relu),
                         Conv("Conv2d_0c_3x3", d(96), (3, 3))]
        return concat_branches(self, [
            [Conv("Conv2d_0a_1x1", d(64), (1, 1))],
            branch_1,
            branch_2,
            [AVG_POOL_3x3, Conv("Conv2d_0b_1x1", d(self.pool_features), (1, 1))],
        ], x, train)


class Module17(nn.Module):
    """A 17×17 Inception module, Mixed_6b-6e (figure 6). Reads `module_17`, `module_17_n`
    and `factorization_activation`.

    Branch_0: 1×1 192 | Branch_1: 1×1 c → 1×n c → n×1 192 |
    Branch_2: 1×1 c → n×1 c → 1×n c → n×1 c → 1×n 192 | Branch_3: 3×3 avg pool → 1×1 192.
    "full" and "3x3" turn each factorized pair into one n×n or 3×3 convolution.
    """

    config: InceptionConfig
    runtime: Runtime
    channels: int  # c: 128 in Mixed_6b, 160 in 6c and 6d, 192 in 6e

    @nn.compact
    def __call__(self, x, train: bool):
        cfg, d, c = self.config, self.config.depth, self.channels
        relu = cfg.factorization_activation == "relu"
        n = cfg.module_17_n
        if cfg.module_17 == "asymmetric":
            branch_1 = [Conv(f"Conv2d_0b_1x{n}", d(c), (1, n), relu=relu),
                        Conv(f"Conv2d_0c_{n}x1", d(192), (n, 1))]
            branch_2 = [Conv(f"Conv2d_0b_{n}x1", d(c), (n, 1), relu=relu),
                        Conv(f"Conv2d_0c_1x{n}", d(c), (1, n)),
                        Conv(f"Conv2d_0d_{n}x1", d(c), (n, 1), relu=relu),
                        Conv(f"Conv2d_0e_1x{n}", d(192), (1, n))]
        else:
            k = n if cfg.module_17 == "full" else 3
            branch_1 = [Conv(f"Conv2d_0b_{k}x{k}", d(192), (k, k))]
            branch_2 = [Conv(f"Conv2d_0b_{k}x{k}", d(c), (k, k)),
                        Conv(f"Conv2d_0c_{k}x{k}", d(192), (k, k))]
        return concat_branches(self, [
            [Conv("Conv2d_0a_1x1", d(192), (1, 1))],
            [Conv("Conv2d_0a_1x1", d(c), (1, 1))] + branch_1,
            [Conv("Conv2d_0a_1x1", d(c), (1, 1))] + branch_2,
            [AVG_POOL_3x3, Conv("Conv2d_0b_1x1", d(192), (1, 1))],
        ], x, train)


class Module8(nn.Module):
    """An 8×8 Inception module, Mixed_7b/7c (figure 7). Reads `module_8` and
    `factorization_activation`.

    Branch_0: 1×1 320 | Branch_1: 1×1 384 → [1×3 384, 3×1 384] |
    Branch_2: 1×1 448 → 3×3 384 → [1×3 384, 3×1 384] | Branch_3: 3×3 avg pool → 1×1 192.
    "expanded" runs each bracketed pair in parallel and concatenates (output 2048); "plain"
    runs it in series, 1×3 then 3×1 (output 1280; not a figure of the paper).
    """

    config: InceptionConfig
    runtime: Runtime
    # TF-slim's name for Branch_1's 3×1: `Conv2d_0b_3x1` in Mixed_7b, `Conv2d_0c_3x1` in 7c.
    branch_1_3x1_name: str = "Conv2d_0c_3x1"

    @nn.compact
    def __call__(self, x, train: bool):
        cfg, d = self.config, self.config.depth
        relu = cfg.factorization_activation == "relu"
        b1_3x1 = self.branch_1_3x1_name
        if cfg.module_8 == "expanded":
            pair_1 = [(Conv("Conv2d_0b_1x3", d(384), (1, 3)), Conv(b1_3x1, d(384), (3, 1)))]
            pair_2 = [(Conv("Conv2d_0c_1x3", d(384), (1, 3)),
                       Conv("Conv2d_0d_3x1", d(384), (3, 1)))]
        else:  # in series: Branch_1 is figure 6 with n = 3; Branch_2 keeps its 3×3 first
            pair_1 = [Conv("Conv2d_0b_1x3", d(384), (1, 3), relu=relu),
                      Conv("Conv2d_0c_3x1", d(384), (3, 1))]
            pair_2 = [Conv("Conv2d_0c_1x3", d(384), (1, 3), relu=relu),
                      Conv("Conv2d_0d_3x1", d(384), (3, 1))]
        return concat_branches(self, [
            [Conv("Conv2d_0a_1x1", d(320), (1, 1))],
            [Conv("Conv2d_0a_1x1", d(384), (1, 1))] + pair_1,
            [Conv("Conv2d_0a_1x1", d(448), (1, 1)), Conv("Conv2d_0b_3x3", d(384), (3, 3))]
            + pair_2,
            [AVG_POOL_3x3, Conv("Conv2d_0b_1x1", d(192), (1, 1))],
        ], x, train)


class GridReduction(nn.Module):
    """Halves the grid while widening it (section 5). Reads `grid_reduction`.

    Subclasses give the branches for a stride and padding. "fig10" builds them with stride 2,
    VALID (figure 10, released); the figure 9 variants build them at stride 1, SAME (with a
    3×3/1 max-pool branch) and put a 3×3/2 max pool before ("fig9_pool_first",
    `MaxPool_0a_3x3`) or after ("fig9_module_first", `MaxPool_2a_3x3`) the module.
    """

    config: InceptionConfig
    runtime: Runtime

    def branches(self, stride: int, padding: str) -> list:
        raise NotImplementedError

    @nn.compact
    def __call__(self, x, train: bool):
        mode = self.config.grid_reduction
        if mode == "fig10":
            return concat_branches(self, self.branches(2, "VALID"), x, train)
        if mode == "fig9_pool_first":
            x = Pooling(Pool("MaxPool_0a_3x3", "max", (3, 3), 2, "VALID"), self.runtime,
                        name="MaxPool_0a_3x3")(x)
        x = concat_branches(self, self.branches(1, "SAME"), x, train)
        if mode == "fig9_module_first":
            x = Pooling(Pool("MaxPool_2a_3x3", "max", (3, 3), 2, "VALID"), self.runtime,
                        name="MaxPool_2a_3x3")(x)
        return x


class Reduction35to17(GridReduction):
    """Mixed_6a, 35×35×288 → 17×17×768 (figure 10). Reads `factorization_activation` too.

    Branch_0: 3×3/2 384 | Branch_1: 1×1 64 → 3×3 96 → 3×3/2 96 | Branch_2: 3×3/2 max pool.
    """

    def branches(self, stride, padding):
        d = self.config.depth
        relu = self.config.factorization_activation == "relu"
        return [
            [Conv("Conv2d_1a_1x1", d(384), (3, 3), stride, padding)],  # sic: a 3×3 in TF-slim
            [Conv("Conv2d_0a_1x1", d(64), (1, 1)),
             Conv("Conv2d_0b_3x3", d(96), (3, 3), relu=relu),
             Conv("Conv2d_1a_1x1", d(96), (3, 3), stride, padding)],
            [Pool("MaxPool_1a_3x3", "max", (3, 3), stride, padding)],
        ]


class Reduction17to8(GridReduction):
    """Mixed_7a, 17×17×768 → 8×8×1280 (figure 10). Reads `factorization_activation` too;
    its 1×7 → 7×1 stays as released whatever `module_17` says.

    Branch_0: 1×1 192 → 3×3/2 320 | Branch_1: 1×1 192 → 1×7 192 → 7×1 192 → 3×3/2 192 |
    Branch_2: 3×3/2 max pool.
    """

    def branches(self, stride, padding):
        d = self.config.depth
        relu = self.config.factorization_activation == "relu"
        return [
            [Conv("Conv2d_0a_1x1", d(192), (1, 1)),
             Conv("Conv2d_1a_3x3", d(320), (3, 3), stride, padding)],
            [Conv("Conv2d_0a_1x1", d(192), (1, 1)),
             Conv("Conv2d_0b_1x7", d(192), (1, 7), relu=relu),
             Conv("Conv2d_0c_7x1", d(192), (7, 1)),
             Conv("Conv2d_1a_3x3", d(192), (3, 3), stride, padding)],
            [Pool("MaxPool_1a_3x3", "max", (3, 3), stride, padding)],
        ]


class AuxHead(nn.Module):
    """The auxiliary classifier on Mixed_6e (section 4, figure 8), `AuxLogits` in TF-slim.
    Reads `aux_head` and `num_classes`.

    5×5/3 avg pool (VALID) → 1×1 128 → 5×5 768 VALID (the "fully connected" layer; batch
    normalized only for "bn") → 1×1 `num_classes` logits (bias, no batch norm). The 5×5 shrinks
    to the feature map where that is smaller (TF-slim's `_reduced_kernel_size_for_small_input`);
    on inputs larger than 299 the logits are averaged over the remaining positions.
    """

    config: InceptionConfig
    runtime: Runtime

    @nn.compact
    def __call__(self, x, train: bool):
        cfg, d, runtime = self.config, self.config.depth, self.runtime
        x = apply_layer(Pool("AvgPool_1a_5x5", "avg", (5, 5), 3, "VALID"), x, train, cfg,
                        runtime)
        x = apply_layer(Conv("Conv2d_1b_1x1", d(128), (1, 1)), x, train, cfg, runtime)
        k = (min(5, x.shape[1]), min(5, x.shape[2]))
        x = apply_layer(Conv(f"Conv2d_2a_{k[0]}x{k[1]}", d(768), k, padding="VALID",
                             batch_norm=cfg.aux_head == "bn", init_stddev=0.01),
                        x, train, cfg, runtime)
        x = apply_layer(Conv("Conv2d_2b_1x1", cfg.num_classes, (1, 1), relu=False,
                             batch_norm=False, init_stddev=0.001), x, train, cfg, runtime)
        return jnp.mean(x, axis=(1, 2))
