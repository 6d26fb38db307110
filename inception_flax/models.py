"""The network, the one way in: a preset's or config's Inception as a Flax module.

    from inception_flax import models
    model = models.create("inception_v3", num_classes=10)
    variables = model.init(rng, images, train=False)
    logits, endpoints = model.apply(variables, images, return_endpoints=True)

The network itself is `inception_flax.model.network` (blocks: `model.blocks`, one module per
figure; the architecture's fields and presets: `model.architecture`).
"""

from inception_flax.model.network import Inception, create, fits, min_input_size

__all__ = ["Inception", "create", "fits", "min_input_size"]
