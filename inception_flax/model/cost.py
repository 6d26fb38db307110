"""What a variant costs, layer by layer, from shapes alone, and width solved to a budget.

The table is read off the model itself: the network is evaluated abstractly (`jax.eval_shape`,
no arithmetic is done) while every convolution and pooling layer reports its input and output
shapes. Conventions:
- multiply-adds (MACs) are per image: a convolution costs out_h · out_w · kh · kw · c_in · c_out;
  batch norm, ReLU, pooling, concatenation and the softmax count as 0;
- params are the learnable parameters (kernels, biases, batch-norm offsets); batch-norm moving
  means and variances are counted apart as `batch_norm_statistics` (Keras counts both);
- `total` is the inference network; the auxiliary head, which only runs in training, is
  reported as `aux_head`, and `training_total` is both together.

Its command line is `python -m inception_flax.cost` (`inception_flax/cost.py`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from inception_flax.model.architecture import InceptionConfig
from inception_flax.model.layers import BasicConv2d, Pooling
from inception_flax.model.network import Inception

AUX_SCOPE = "AuxLogits"


@dataclasses.dataclass(frozen=True)
class LayerCost:
    name: str  # scope path, TF-slim's names: "Mixed_5b/Branch_1/Conv2d_0b_5x5"
    type: str  # "conv", "max pool", "avg pool"
    kernel: tuple[int, int]
    stride: int
    padding: str
    input_shape: tuple[int, int, int]  # H, W, C
    output_shape: tuple[int, int, int]
    params: int
    batch_norm_statistics: int
    macs: int
    macs_on_image: int  # taps on SAME padding's zeros left out (what XLA's cost analysis counts)
    batch_norm: bool = False  # a convolution's batch norm (False: a bias, or a pooling layer)
    relu: bool = False  # a ReLU after it

    @property
    def training_only(self) -> bool:
        return self.name.startswith(AUX_SCOPE + "/")


@dataclasses.dataclass(frozen=True)
class Totals:
    params: int = 0
    macs: int = 0
    batch_norm_statistics: int = 0
    macs_on_image: int = 0

    def __add__(self, other: "Totals") -> "Totals":
        return Totals(*(a + b for a, b in zip(dataclasses.astuple(self),
                                              dataclasses.astuple(other))))

    @staticmethod
    def of(layers) -> "Totals":
        return Totals(*(sum(getattr(l, f.name) for l in layers)
                        for f in dataclasses.fields(Totals)))


@dataclasses.dataclass(frozen=True)
class CostTable:
    config: InceptionConfig
    image_size: tuple[int, int]
    layers: tuple[LayerCost, ...]

    @property
    def total(self) -> Totals:
        """The inference network (everything but the auxiliary head)."""
        return Totals.of([l for l in self.layers if not l.training_only])

    @property
    def aux_head(self) -> Totals:
        return Totals.of([l for l in self.layers if l.training_only])

    @property
    def training_total(self) -> Totals:
        return self.total + self.aux_head

    def to_json(self) -> dict:
        return {
            "config": dataclasses.asdict(self.config),
            "image_size": list(self.image_size),
            "total": dataclasses.asdict(self.total),
            "aux_head": dataclasses.asdict(self.aux_head),
            "training_total": dataclasses.asdict(self.training_total),
            "module_grids": {p.name: list(p.grid) for p in parts(self)
                             if p.name in MODULE_STAGES},
            "layers": [dict(dataclasses.asdict(l), training_only=l.training_only)
                       for l in self.layers],
        }


def _taps_on_image(size: int, kernel: int, stride: int, out: int, padding: str) -> int:
    """Kernel taps, summed over the outputs of one spatial dimension, that land on the input
    rather than on SAME padding (TF pads the extra row/column at the end)."""
    if padding == "VALID":
        return out * kernel
    before = max((out - 1) * stride + kernel - size, 0) // 2
    return sum(min(o * stride - before + kernel, size) - max(o * stride - before, 0)
               for o in range(out))


def _image_hw(image_size) -> tuple[int, int]:
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


@functools.lru_cache(maxsize=256)
def _cost(config: InceptionConfig, image_hw: tuple[int, int]) -> CostTable:
    layers = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, (BasicConv2d, Pooling)):
            return out
        x = args[0]
        h_in, w_in, c_in = x.shape[1:]
        h, w, c = out.shape[1:]
        name = "/".join(module.scope.path)
        if isinstance(module, BasicConv2d):
            spec = module.spec
            kh, kw = spec.kernel
            kernel = kh * kw * c_in * c
            taps = (_taps_on_image(h_in, kh, spec.stride, h, spec.padding)
                    * _taps_on_image(w_in, kw, spec.stride, w, spec.padding))
            layers.append(LayerCost(
                name, "conv", spec.kernel, spec.stride, spec.padding, (h_in, w_in, c_in),
                (h, w, c), params=kernel + c, batch_norm_statistics=2 * c if spec.batch_norm
                else 0, macs=h * w * kernel, macs_on_image=taps * c_in * c,
                batch_norm=spec.batch_norm, relu=spec.relu))
        else:
            spec = module.spec
            layers.append(LayerCost(
                name, f"{spec.kind} pool", spec.window, spec.stride, spec.padding,
                (h_in, w_in, c_in), (h, w, c), params=0, batch_norm_statistics=0, macs=0,
                macs_on_image=0))
        return out

    images = jax.ShapeDtypeStruct((1, *image_hw, 3), jnp.float32)
    model = Inception(config)
    with nn.intercept_methods(record):
        variables = jax.eval_shape(functools.partial(model.init, train=False),
                                   jax.random.PRNGKey(0), images)
    _check_every_parameter_counted(variables["params"], layers)
    return CostTable(config, image_hw, tuple(layers))


def _check_every_parameter_counted(params, layers) -> None:
    """Every parameter belongs to a layer the table counts: a module of another type than
    `BasicConv2d` and `Pooling` would otherwise drop out of the costs unnoticed."""
    counted = {layer.name for layer in layers}
    missing = sorted({"/".join(str(getattr(k, "key", k)) for k in path[:-2])
                      for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
                     - counted)
    if missing:
        raise TypeError(f"the cost table counts no layer at {', '.join(missing)}, which hold "
                        "parameters: build layers as `layers.BasicConv2d` (or teach "
                        "`cost._cost` the new layer type).")


def cost(config: InceptionConfig, image_size: int | tuple[int, int] = 299) -> CostTable:
    """The per-layer cost of `config` on `image_size` (side, or (height, width)) inputs."""
    return _cost(config, _image_hw(image_size))


# ---------------------------------------------------------------------------------------------
# The grids each part of the network acts on.

MODULE_STAGES = ("35×35 modules", "17×17 modules", "8×8 modules")
_PARTS = (("Stem", "stem"), ("Mixed_5", MODULE_STAGES[0]),
          ("Mixed_6a", "35→17 reduction"), ("Mixed_6", MODULE_STAGES[1]),
          ("AuxLogits", "auxiliary head"), ("Mixed_7a", "17→8 reduction"),
          ("Mixed_7", MODULE_STAGES[2]), ("Logits", "classifier"))


@dataclasses.dataclass(frozen=True)
class Part:
    """The layers of one part of the network (the stem, a stage of modules, a reduction...),
    named by the paper's grid: "35×35 modules" act on a 35×35 grid at 299×299 input, on a
    smaller one at a smaller input."""

    name: str
    scopes: str  # TF-slim's scopes, e.g. "Mixed_6b-6e"
    layers: tuple[LayerCost, ...]

    @property
    def grid(self) -> tuple[int, int]:
        """The grid (height, width) its first layer takes in."""
        return self.layers[0].input_shape[:2]

    @property
    def structure(self) -> tuple:
        """What the part computes, apart from its widths: every layer's name, type, kernel,
        stride, padding and grid, whether it has batch norm (else a bias) and a ReLU. Two
        variants with equal structures differ here only in width (a fixed-cost sweep's
        depth_multiplier)."""
        return tuple((l.name.split("/", 1)[-1], l.type, l.kernel, l.stride, l.padding,
                      l.input_shape[:2], l.batch_norm, l.relu) for l in self.layers)

    def kernels_over_grid(self) -> list[tuple[int, int]]:
        """The distinct convolution kernels larger than the grid they act on, in either
        dimension (SAME padding: most of their taps multiply zeros)."""
        return list(dict.fromkeys(
            l.kernel for l in self.layers if l.type == "conv"
            and (l.kernel[0] > l.input_shape[0] or l.kernel[1] > l.input_shape[1])))


def parts(report: CostTable) -> list[Part]:
    """The report's layers grouped into the parts of the network, in order."""
    groups: dict[str, list] = {}
    scopes: dict[str, list] = {}
    for layer in report.layers:
        scope = layer.name.split("/", 1)[0]
        name = next(name for prefix, name in _PARTS if scope.startswith(prefix))
        groups.setdefault(name, []).append(layer)
        scopes.setdefault(name, [])
        if scope not in scopes[name]:
            scopes[name].append(scope)
    label = lambda s: s[0] if len(s) == 1 else f"{s[0]}-{s[-1][len('Mixed_'):]}"  # noqa: E731
    return [Part(name, label(scopes[name]), tuple(layers)) for name, layers in groups.items()]


def grid_summary(report: CostTable) -> str:
    """The grid each stage of modules acts on, e.g. "35×35 modules on 7×7, ..."."""
    stages = {p.name: p for p in parts(report)}
    return ", ".join(f"{name} ({stages[name].scopes}) on {_hw(stages[name].grid)}"
                     for name in MODULE_STAGES if name in stages)


def grid_warnings(report: CostTable) -> list[str]:
    """One line for every part with a kernel larger than its grid."""
    lines = []
    for part in parts(report):
        over = part.kernels_over_grid()
        if over:
            kernels = [_hw(k) for k in over]
            kernels = ", ".join(kernels[:-1]) + " and " * (len(kernels) > 1) + kernels[-1]
            verb, their = ("act", "their") if part.name.endswith("s") else ("acts", "its")
            lines.append(
                f"warning: at {_hw(report.image_size)} input the {part.name} ({part.scopes}) "
                f"{verb} on a {_hw(part.grid)} grid, smaller than {their} {kernels} kernel"
                f"{'s' if len(over) > 1 else ''}: most of those taps multiply SAME padding's "
                "zeros.")
    return lines


def _hw(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def solve_depth_multiplier(config: InceptionConfig, image_size, target_macs: float,
                           tolerance: float = 0.01) -> InceptionConfig:
    """`config` with the `depth_multiplier` whose inference multiply-adds are within
    `tolerance` (relative) of `target_macs`; a ValueError if no multiplier gets there.

    Multiply-adds grow about quadratically with the multiplier, so the solver takes
    square-root steps and then bisects (TF-slim's int() rounding makes the curve a staircase).
    """
    def macs(multiplier):
        return cost(config.replace(depth_multiplier=multiplier), image_size).total.macs

    def close(value):
        return abs(value - target_macs) <= tolerance * target_macs

    multiplier = config.depth_multiplier
    value = macs(multiplier)
    for _ in range(6):  # Newton-like steps on macs ∝ multiplier²
        if close(value):
            return config.replace(depth_multiplier=multiplier)
        multiplier = multiplier * math.sqrt(target_macs / value)
        value = macs(multiplier)
    low, high = multiplier, multiplier
    while macs(low) > target_macs and low > 1e-3:
        low /= 2
    while macs(high) < target_macs and high < 1e3:
        high *= 2
    for _ in range(40):
        if close(value):
            return config.replace(depth_multiplier=multiplier)
        multiplier = (low + high) / 2
        value = macs(multiplier)
        if value < target_macs:
            low = multiplier
        else:
            high = multiplier
    raise ValueError(
        f"no depth_multiplier brings this variant within {tolerance:.0%} of "
        f"{target_macs:,.0f} multiply-adds at {image_size} (closest: {multiplier:.4f} with "
        f"{value:,.0f}); min_depth={config.min_depth} may floor the cheapest layers.")


# ---------------------------------------------------------------------------------------------
# Output formats.

COLUMNS = ("layer", "type", "kernel/stride", "input", "output", "params", "MACs")


def _row(layer: LayerCost) -> tuple:
    kernel = f"{layer.kernel[0]}×{layer.kernel[1]}/{layer.stride}"
    if layer.padding == "VALID":
        kernel += " valid"
    shape = lambda s: "×".join(str(v) for v in s)  # noqa: E731
    return (layer.name, layer.type, kernel, shape(layer.input_shape),
            shape(layer.output_shape), layer.params, layer.macs)


def _summary_lines(report: CostTable) -> list[str]:
    total, aux, train = report.total, report.aux_head, report.training_total
    lines = [
        f"inference total: {total.params:,} params ({total.params + total.batch_norm_statistics:,}"
        f" with {total.batch_norm_statistics:,} batch-norm statistics, as Keras counts), "
        f"{total.macs:,} multiply-adds ({total.macs / 1e9:.3f} G) per "
        f"{report.image_size[0]}×{report.image_size[1]} image",
    ]
    if aux.params:
        lines.append(f"auxiliary head (training only): {aux.params:,} params, "
                     f"{aux.macs:,} multiply-adds; training total {train.params:,} params, "
                     f"{train.macs:,} multiply-adds")
    lines.append(f"grids at {_hw(report.image_size)}: {grid_summary(report)}")
    return lines


def format_table(report: CostTable, fmt: str = "table") -> str:
    rows = [_row(l) for l in report.layers]
    if fmt == "json":
        return json.dumps(report.to_json(), indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS + ("training_only",))
        for layer, row in zip(report.layers, rows):
            writer.writerow(row + (layer.training_only,))
        return out.getvalue()
    text_rows = [tuple(f"{v:,}" if isinstance(v, int) else v for v in row) for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(COLUMNS) + " |",
                 "|" + "|".join("---:" if c in ("params", "MACs") else "---" for c in COLUMNS)
                 + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in text_rows]
        return "\n".join(lines + [""] + [f"- {s}" for s in _summary_lines(report)]) + "\n"
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use table, markdown, csv or json.")
    widths = [max(len(str(r[i])) for r in text_rows + [COLUMNS]) for i in range(len(COLUMNS))]
    align = lambda row: "  ".join(  # noqa: E731
        str(v).rjust(w) if i >= 5 else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
    lines = [align(COLUMNS), "  ".join("-" * w for w in widths)]
    lines += [align(row) for row in text_rows]
    return "\n".join(lines + [""] + _summary_lines(report)) + "\n"
