"""Section 9, table 2: networks for 299×299, 151×151 and 79×79 receptive fields, each fed
inputs of its size, at the same cost (fixed_cost: the width of the 151 and 79 networks is
solved to the 299 network's multiply-adds within 1%). Paper top-1 accuracy: 76.6 / 76.4 / 75.2.

On Fashion-MNIST the images are resized to each network's input size, so this experiment runs
there as on ImageNet, at ImageNet's cost per image."""

from experiments import base


def get_config(data=None):
    config = base(data, baseline="rf299", fixed_cost=True, axes=[{
        "rf299": {"image_size": 299, "model.receptive_field": 299},
        "rf151": {"image_size": 151, "model.receptive_field": 151},
        "rf79": {"image_size": 79, "model.receptive_field": 79},
    }], paper={"rf299": {"top1": 23.4}, "rf151": {"top1": 23.6}, "rf79": {"top1": 24.8}})
    config.model.aux_head = "bn"
    if (data or "fashion_mnist") == "fashion_mnist":
        # At the default 0.25, TF-slim's int(d × m) rounding moves nearly every layer by one
        # channel at once where the 79 network would match (m = 9/32): a 4% step, so no width
        # is within 1%. From 0.3 one is.
        config.model.depth_multiplier = 0.3
    return config
