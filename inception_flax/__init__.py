"""inception_flax: Inception-v3 and the ablations of "Rethinking the Inception Architecture for
Computer Vision" (Szegedy et al., CVPR 2016) as Flax modules, with an exact cost model, and the
training and sweeps that compare them.

    from inception_flax import models, cost
    model = models.create("inception_v3", module_35="fig5")
    cost.cost(model.config, 299).total.macs

The public way in: this package's `InceptionConfig`, `PRESETS`, `get_preset`; `models`
(`create`), `cost` (`python -m inception_flax.cost`), `convert` (`from_keras`), `results`
(`python -m inception_flax.results`). Underneath, in layers that import only downwards (a test
holds them to it, `pyproject.toml`'s import-linter contract):
- `sweeps`: variants × seeds, their execution, verdicts and tables;
- `run`: one training run: its settings, data, steps, loop, checkpoints and records;
- `model`: the architecture, its layers and blocks, lowering and cost;
- `utils`: files and locks, the command line's conventions, the disk, TCMalloc, old names.
"""

from inception_flax.model.architecture import PRESETS, InceptionConfig, get_preset

__all__ = ["InceptionConfig", "PRESETS", "get_preset"]
