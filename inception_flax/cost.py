"""What a variant costs, from shapes alone: the cost model (`inception_flax.model.cost`) and its
command line.

    python -m inception_flax.cost --preset inception_v3 --image_size 299
    python -m inception_flax.cost --preset receptive_field_79 --image_size 79 \\
        --match_macs inception_v3@299 --format json

    from inception_flax import cost
    cost.cost(config, 299).total.macs
    cost.solve_depth_multiplier(config, 299, target_macs=4e9)
"""

from __future__ import annotations

import sys

from absl import flags

from inception_flax.model.architecture import PRESETS, get_preset
from inception_flax.model.cost import (MODULE_STAGES, CostTable, LayerCost, Part, Totals, cost,
                                       format_table, grid_summary, grid_warnings, parts,
                                       solve_depth_multiplier)
from inception_flax.utils import cli

__all__ = ["MODULE_STAGES", "CostTable", "LayerCost", "Part", "Totals", "cost", "format_table",
           "grid_summary", "grid_warnings", "parts", "solve_depth_multiplier", "main"]


def _parse_size(text: str) -> int | tuple[int, int]:
    try:
        if "x" in text:
            height, width = text.split("x")
            return int(height), int(width)
        return int(text)
    except ValueError:
        raise ValueError(f"image size {text!r} is not N or HxW (for example 299 or "
                         "320x240).") from None


def _parse_macs(text: str, image_size) -> float:
    preset, _, size = text.partition("@")
    if preset in PRESETS:
        return cost(PRESETS[preset], _parse_size(size) if size else image_size).total.macs
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}
    try:
        if text[-1:].upper() in scale:
            return float(text[:-1]) * scale[text[-1:].upper()]
        return float(text)
    except ValueError:
        raise ValueError(f"--match_macs {text!r} is neither a preset[@size] "
                         f"({', '.join(sorted(PRESETS))}) nor a number such as 5.7G.") from None


def _define(values) -> None:
    flags.DEFINE_string("preset", "inception_v3", f"One of: {', '.join(sorted(PRESETS))}.",
                        flag_values=values)
    flags.DEFINE_string("image_size", "299", "Input side N, or HxW (e.g. 320x240); also "
                        "--image-size.", flag_values=values)
    flags.DEFINE_multi_string("set", [], "FIELD=VALUE: overrides a config field, e.g. "
                              "--set module_17_n=5 (repeatable).", flag_values=values)
    flags.DEFINE_string("match_macs", None, "Solves depth_multiplier so the inference "
                        "multiply-adds match this preset's (at --image_size, or PRESET@SIZE) or "
                        "this number (e.g. 5.7G) within 1%; also --match-macs.",
                        flag_values=values)
    flags.DEFINE_enum("format", "table", ["table", "markdown", "csv", "json"],
                      "Output format.", flag_values=values)


def main(argv=None) -> int:
    values = cli.parse(argv, "python -m inception_flax.cost",
                       "Parameters and multiply-adds of an Inception variant, per layer and in "
                       "total, from shapes alone (nothing is run); the grid each stage of "
                       "modules acts on, with a warning on stderr where a kernel is larger.",
                       _define)
    if isinstance(values, int):
        return values
    try:
        image_size = _parse_size(values.image_size)
        config = get_preset(values.preset)
        overrides = {}
        for item in values.set:
            field, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item!r} is not FIELD=VALUE.")
            overrides[field] = config.coerce(field, value)
        config = config.replace(**overrides)
        if values.match_macs:
            config = solve_depth_multiplier(config, image_size,
                                            _parse_macs(values.match_macs, image_size))
        table = cost(config, image_size)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in grid_warnings(table):
        print(line, file=sys.stderr)
    if values.match_macs and values.format in ("table", "markdown"):
        print(f"depth_multiplier solved to {config.depth_multiplier:.4f} to match "
              f"{values.match_macs}\n")
    sys.stdout.write(format_table(table, values.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
