"""The architecture config: one frozen dataclass, every ablation of the paper one field of it.

A preset is a value of `InceptionConfig` (see `PRESETS`), never a subclass. Each field is read
in exactly one place, the module it changes (see `inception_flax.model.blocks`).

Section, figure and table numbers refer to "Rethinking the Inception Architecture for Computer
Vision" (Szegedy et al., CVPR 2016); "released" means the network that TF-slim's
`nets/inception_v3.py` and `keras.applications.InceptionV3` build.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

from inception_flax.utils import compat

Stem = Literal["released", "table1", "7x7", "table1_7x7"]
Module35 = Literal["released", "fig4", "fig5", "released_5x5_as_3x3"]
Module17 = Literal["asymmetric", "full", "3x3"]
Module8 = Literal["expanded", "plain"]
Activation = Literal["relu", "linear"]
GridReduction = Literal["fig10", "fig9_pool_first", "fig9_module_first"]
ReceptiveField = Literal[299, 151, 79]
AuxHead = Literal["none", "plain", "bn"]
DType = Literal["float32", "bfloat16", "float64"]
Lowering = Literal["auto", "xla", "matmul"]
MAX_MODULES = 20  # per grid: endpoint letters b..u


@dataclasses.dataclass(frozen=True)
class InceptionConfig:
    """Everything that decides the network's structure. Defaults: released Inception-v3.

    Attributes:
      num_classes: classifier outputs (1000 as Keras; TF-slim's checkpoints use 1001).
      depth_multiplier: multiplies every convolution's filter count, as TF-slim's
        `depth = max(int(d * depth_multiplier), min_depth)`; must be > 0.
      min_depth: the smallest filter count `depth_multiplier` may shrink a layer to.
      dropout_rate: dropout before the classifier (TF-slim keeps 0.8, so 0.2).
      dtype: compute dtype of activations; parameters are created float32. "float64" (with
        `jax_enable_x64`) is for numerical checks, such as 8 devices against 1.
      lowering: how convolutions and max pooling are handed to XLA, asked of
        `inception_flax.model.lowering.choose` (the one place that reads the backend); the network
        and its gradients are the same. "xla": `lax.conv_general_dilated` and
        `lax.reduce_window`; "matmul": im2col patches times the kernel, and max pooling's
        gradient by strided slices (`inception_flax.model.cpu_ops`), much faster on XLA's CPU backend
        at full width; "auto": "matmul" on a CPU, "xla" on GPUs and TPUs. At a quarter width
        "xla" trains faster on a CPU (`configs/fashion_mnist.py` sets it).
      batch_norm_decay: moving-average decay of batch-norm statistics (TF-slim: 0.9997).
      batch_norm_epsilon: batch-norm epsilon (TF-slim and Keras: 1e-3).
      stem: the layers before the first 35×35 module.
        "released": Conv2d_1a_3x3/2, 2a_3x3, 2b_3x3, MaxPool_3a, 3b_1x1 (80), 4a_3x3 (192),
          MaxPool_5a: the code TF-slim and Keras ship; the first 35×35 module sees 192 channels.
        "table1": the stem as the paper's table 1 prints it: after MaxPool_3a, 3×3 conv to 80
          (73→71), 3×3/2 conv to 192 (71→35), 3×3 conv to 288 (SAME); the first 35×35 module
          sees 288 channels. Paddings follow from the table's sizes.
        "7x7": a single 7×7/2 convolution in place of the three 3×3 convolutions Conv2d_1a..2b,
          on the released stem: the factorization of section 6 undone on the released
          network. A RECONSTRUCTION: the paper gives neither its width nor its padding; we
          assume 64 filters (the width of the stack it replaces, as in GoogLeNet's first
          layer) and VALID padding (299→147, the grid the stack reaches). The rest is the
          released stem.
        "table1_7x7": the same 7×7/2 convolution in place of table 1's three 3×3, the rest as
          "table1": the stem of table 3's "Inception-v2 basic" row (before "+ Factorized
          7×7"), whose network is table 1's (`inception_v2_basic`). A RECONSTRUCTION, as
          "7x7".
      receptive_field: section 9, table 2: networks for 299/151/79-pixel inputs that the paper
        says cost the same. 299: Conv2d_1a stride 2 and MaxPool_3a (released). 151: Conv2d_1a
        stride 1, MaxPool_3a kept: from 151×151 inputs the same grids and exactly the same
        cost as the 299 network. 79: Conv2d_1a stride 1, no MaxPool_3a: from 79×79 inputs the
        stem runs at 77/75/75/75/73 and the 35×35 modules at 36×36, 5.362 G multiply-adds at
        full width, 6.2% LESS than the 299 network's 5.713 G: the paper's 79 network must have
        differed (it does not say how), or its "same cost" was approximate. A fixed-cost sweep
        widens it to the 299 network's cost (depth_multiplier 1.032 at full width; the
        receptive-field experiment shows both rows).
      module_35: the 35×35 modules Mixed_5b-5d (section 3.1, figures 4 and 5); branches as
        TF-slim numbers them, so a layer keeps its name across the values.
        "released": TF-slim's module, which is neither figure: Branch_0 1×1 64 | Branch_1
          1×1 48 → 5×5 64 | Branch_2 1×1 64 → 3×3 96 → 3×3 96 | Branch_3 avg pool → 1×1.
        "fig4": figure 4, GoogLeNet's module, 1×1 | 1×1 → 3×3 | 1×1 → 5×5 | pool → 1×1: the
          released module without Branch_2's second 3×3 (Branch_1 1×1 48 → 5×5 64, Branch_2
          1×1 64 → 3×3 96).
        "fig5": figure 5, figure 4 with its 5×5 replaced by two 3×3 (Branch_1 1×1 48 → 3×3 64
          → 3×3 64), the module of the paper's table 1; fig4 → fig5 changes only that 5×5.
        Figures 4 and 5 are RECONSTRUCTIONS in their widths and pooling: the paper draws no
          widths, so they take the released module's; the pool branch is an average pool as
          released (the figures do not say which; GoogLeNet used max).
        "released_5x5_as_3x3": the released module with its 5×5 replaced by two 3×3 64, so
          both middle branches are double 3×3: neither figure (its old name: `utils.compat`).
      module_17: the 17×17 modules Mixed_6b-6e (figure 6). "asymmetric": each n×n is
        factorized into 1×n then n×1 (released with n = 7); "full": each factorized pair is
        one n×n convolution; "3x3": each factorized pair is one 3×3 convolution.
      module_17_n: n of `module_17` (odd, >= 3; 7 released).
      module_8: the 8×8 modules Mixed_7b, 7c (figure 7). "expanded": the 1×3 and 3×1 run in
        parallel on the same input and are concatenated (released; output 2048); "plain":
        they run in series, 1×3 then 3×1 (output 1280): Branch_1 is then figure 6's
        1×n → n×1 with n = 3, while Branch_2 keeps its 3×3 before the 1×3 → 3×1. Not a
        figure of the paper: our control for figure 7's expansion.
      factorization_activation: the activation between the two convolutions of every
        factorization in series (figure 2): the two stacked 3×3 of the 35×35 modules and of
        Mixed_6a, the 1×n → n×1 pairs of the 17×17 modules and Mixed_7a, and the 1×3 → 3×1
        of plain 8×8 modules. "relu" (released) or "linear" (figure 2's control: the first
        convolution of each pair keeps batch norm but has no ReLU). The stem is not changed.
        The paper reports figure 2's control for one network without saying which pairs it
        changed; changing every pair in series at once is our reading.
      grid_reduction: how Mixed_6a (35→17) and Mixed_7a (17→8) reduce the grid (section 5).
        "fig10": stride-2 convolution branches beside a stride-2 max pool, concatenated
        (figure 10, released). "fig9_pool_first": a 3×3/2 max pool, then the same branches at
        stride 1 with a 3×3/1 max-pool branch (figure 9 left: a representational bottleneck).
        "fig9_module_first": those stride-1 branches at full resolution, then the 3×3/2 max
        pool (figure 9 right: about 3× the cost of the module). Output widths are unchanged.
        Figure 9 draws the two designs without widths: ours use figure 10's branches and
        widths at stride 1 (a reconstruction).
      aux_head: the auxiliary classifier on Mixed_6e (section 4, figure 8). "none"; "plain":
        its 1×1 convolution is batch-normalized but its fully connected layer (the 5×5
        convolution to 768) has a bias and no batch norm; "bn": that layer is batch-normalized
        too ("BN-auxiliary" of table 3; what TF-slim releases). "plain" is our reading of the
        head before "+ BN-auxiliary": the paper says only that BN-auxiliary also normalizes
        the fully connected layer.
      modules_per_grid: how many Inception modules run at the 35×35, 17×17 and 8×8 grids,
        not counting the grid reductions Mixed_6a and Mixed_7a: (3, 4, 2) released. Named
        Mixed_5b.., Mixed_6b.., Mixed_7b..; the auxiliary head sits on the last 17×17
        module. Widths: the 35×35 pool branches are 32 then 64; the 17×17 modules' c is 128
        for the first, 192 for the last, 160 between (released: 128, 160, 160, 192; a single
        module takes 192). Table 1 prints "3×", "5×" and "2×": see `inception_v2_table1`.
    """

    num_classes: int = 1000
    depth_multiplier: float = 1.0
    min_depth: int = 16
    dropout_rate: float = 0.2
    dtype: DType = "float32"
    lowering: Lowering = "auto"
    batch_norm_decay: float = 0.9997
    batch_norm_epsilon: float = 1e-3
    stem: Stem = "released"
    receptive_field: ReceptiveField = 299
    module_35: Module35 = "released"
    module_17: Module17 = "asymmetric"
    module_17_n: int = 7
    module_8: Module8 = "expanded"
    factorization_activation: Activation = "relu"
    grid_reduction: GridReduction = "fig10"
    aux_head: AuxHead = "bn"
    modules_per_grid: tuple[int, int, int] = (3, 4, 2)

    def __post_init__(self):
        if compat.renamed_module_35(self.module_35):
            raise ValueError(compat.renamed_module_35(self.module_35))
        if isinstance(self.modules_per_grid, list):  # from a ConfigDict or JSON: stay hashable
            object.__setattr__(self, "modules_per_grid", tuple(self.modules_per_grid))
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            if typing.get_origin(hints[field.name]) is not Literal:
                continue
            allowed = typing.get_args(hints[field.name])
            value = getattr(self, field.name)
            if value not in allowed:
                raise ValueError(
                    f"InceptionConfig.{field.name}={value!r} is not valid; "
                    f"choose one of {', '.join(repr(a) for a in allowed)}.")
        if not self.depth_multiplier > 0:
            raise ValueError(
                f"depth_multiplier is not greater than zero (got {self.depth_multiplier}); "
                "use a positive multiplier such as 0.5 or 1.0.")
        if self.module_17_n < 3 or self.module_17_n % 2 == 0:
            raise ValueError(
                f"module_17_n={self.module_17_n} is not valid; use an odd n >= 3 (7 released).")
        if self.num_classes < 1 or self.min_depth < 1:
            raise ValueError("num_classes and min_depth must be positive integers.")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate={self.dropout_rate} must be in [0, 1).")
        if not 0.0 <= self.batch_norm_decay < 1.0:
            raise ValueError(f"batch_norm_decay={self.batch_norm_decay} must be in [0, 1).")
        if not self.batch_norm_epsilon > 0:
            raise ValueError(f"batch_norm_epsilon={self.batch_norm_epsilon} must be > 0.")
        if not isinstance(self.modules_per_grid, tuple) or len(self.modules_per_grid) != 3 \
                or not all(
                isinstance(n, int) and 1 <= n <= MAX_MODULES for n in self.modules_per_grid):
            raise ValueError(
                f"modules_per_grid={self.modules_per_grid!r} is not valid; give three counts "
                f"(35×35, 17×17, 8×8 modules) from 1 to {MAX_MODULES}, e.g. (3, 4, 2).")

    def depth(self, filters: int) -> int:
        """TF-slim's filter count for a layer of `filters` filters in the released network."""
        return max(int(filters * self.depth_multiplier), self.min_depth)

    @classmethod
    def from_fields(cls, fields) -> "InceptionConfig":
        """The config with these fields (a mapping, e.g. a training config's `model`; the
        rest default to the released network's); unknown names raise a ValueError."""
        cls._check_names(fields)
        return cls(**dict(fields))

    def replace(self, **overrides) -> "InceptionConfig":
        """A copy with some fields changed; unknown field names raise a ValueError."""
        self._check_names(overrides)
        return dataclasses.replace(self, **overrides)

    @classmethod
    def _check_names(cls, fields) -> None:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ValueError(
                f"unknown InceptionConfig field(s) {', '.join(unknown)} (model."
                f"{unknown[0]}); valid fields: {', '.join(sorted(names))}.")

    def coerce(self, field: str, text: str):
        """Parses `text` (from a command line) into the type of `field`."""
        self._check_names([field])
        current = getattr(self, field)
        if isinstance(current, bool):
            return text.lower() in ("1", "true", "yes")
        if isinstance(current, tuple):  # "3,5,2" or "(3, 5, 2)"
            try:
                return tuple(int(part) for part in text.strip("()[] ").split(","))
            except ValueError:
                raise ValueError(f"{field}={text!r} is not a list of integers such as "
                                 "3,5,2.") from None
        if isinstance(current, int) and not isinstance(current, bool):
            return int(text)
        if isinstance(current, float):
            return float(text)
        return text


INCEPTION_V3 = InceptionConfig()
INCEPTION_V2 = INCEPTION_V3.replace(stem="table1", module_35="fig5", modules_per_grid=(3, 5, 2))

PRESETS: dict[str, InceptionConfig] = {
    # The released network (TF-slim, with its BN-auxiliary head; Keras has no aux head).
    "inception_v3": INCEPTION_V3,
    # Table 1 as printed: its stem, figure 5 at 35×35, and "3×", "5×", "2×" read as counts of
    # the figure each row names (5, 6, 7), so the figure-10 grid reductions Mixed_6a and
    # Mixed_7a are not among them: (3, 5, 2). Counting each reduction in the row of the grid it
    # takes in would give (2, 4, 2); the released network, (3, 4, 2), matches neither reading.
    # The fifth 17×17 module's width is ours (c = 160, as its neighbours). With the
    # BN-auxiliary head: table 3's last row, the paper's Inception-v3 (table 1's network with
    # every change of table 3).
    "inception_v2_table1": INCEPTION_V2,
    # Table 3's ladder is built on table 1's network (section 6: "Inception-v2"). "Inception-v2
    # basic": its first three 3×3 as one 7×7 (a reconstruction: `stem`), and an auxiliary
    # head without batch norm in its fully connected layer (our reading: `aux_head`); the
    # RMSProp and label-smoothing rungs are training choices (experiments/paper_table3.py).
    "inception_v2_basic": INCEPTION_V2.replace(stem="table1_7x7", aux_head="plain"),
    "inception_v2_factorized_7x7": INCEPTION_V2.replace(aux_head="plain"),
    # Section 9, table 2.
    "receptive_field_299": INCEPTION_V3,
    "receptive_field_151": INCEPTION_V3.replace(receptive_field=151),
    "receptive_field_79": INCEPTION_V3.replace(receptive_field=79),
    # Figure 2's control.
    "linear_factorization": INCEPTION_V3.replace(factorization_activation="linear"),
    # Section 5.
    "grid_fig9_pool_first": INCEPTION_V3.replace(grid_reduction="fig9_pool_first"),
    "grid_fig9_module_first": INCEPTION_V3.replace(grid_reduction="fig9_module_first"),
}


def get_preset(name: str, **overrides) -> InceptionConfig:
    """The named preset with `overrides` applied; unknown names raise a ValueError."""
    try:
        config = PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}.") from None
    return config.replace(**overrides)
