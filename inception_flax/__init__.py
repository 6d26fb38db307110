"""inception_flax: Inception-v3 and the ablations of "Rethinking the Inception Architecture for
Computer Vision" (Szegedy et al., CVPR 2016) as Flax modules, with an exact cost model.

    from inception_flax import models, cost
    model = models.create("inception_v3", module_35="fig5")
    cost.cost(model.config, 299).total.macs

`inception_flax.convert.from_keras` imports Keras's ImageNet weights (needs keras).
"""

from inception_flax.config import PRESETS, InceptionConfig, get_preset

__all__ = ["InceptionConfig", "PRESETS", "get_preset"]
