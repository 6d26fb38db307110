"""The architecture's part of a training config, as data: a preset named by a string and
overrides as plain values.

    config.model = inception.model("inception_v3", num_classes=10, depth_multiplier=0.25)

Every field of the architecture is there with its type, so that `--config.model.FIELD=VALUE`
is type-checked for each; a field left None takes the preset's value when the run is validated
(`inception_flax.run.settings.validate`, the one conversion to `InceptionConfig`), and the run
records every field's value. The names and types mirror `InceptionConfig`'s
(`inception_flax/model/architecture.py`, where each field's docstring says what it builds; the
presets are listed there too); `tests/run/test_settings.py` checks that they agree.
"""

import ml_collections
from ml_collections import config_dict

FIELDS = {
    "num_classes": int, "depth_multiplier": float, "min_depth": int, "dropout_rate": float,
    "dtype": str, "lowering": str, "batch_norm_decay": float, "batch_norm_epsilon": float,
    "stem": str, "receptive_field": int, "module_35": str, "module_17": str, "module_17_n": int,
    "module_8": str, "factorization_activation": str, "grid_reduction": str, "aux_head": str,
    "modules_per_grid": tuple,
}


def model(preset: str = "inception_v3", **overrides) -> ml_collections.ConfigDict:
    """`preset` (e.g. "inception_v3", "inception_v2_table1") with `overrides` (field=value)."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown architecture field(s) {', '.join(unknown)}; valid fields: "
                         f"{', '.join(FIELDS)}.")
    fields = {name: config_dict.placeholder(kind) for name, kind in FIELDS.items()}
    fields.update(overrides)
    return ml_collections.ConfigDict({"preset": preset, **fields})
