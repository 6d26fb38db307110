"""The README's main job: two variants of the 35×35 modules (figure 4's 5×5 branch as
released vs figure 5's two 3×3) on Fashion-MNIST, one seed each, about 1.2 epochs per run, so
that the whole sweep finishes in under 10 minutes on a 2-core CPU and prints its table."""

from experiments import base


def get_config(data=None):
    config = base(data, seeds=(0,), baseline="released",
                  axes=[{"released": {},
                         "double_3x3": {"model.module_35": "double_3x3"}}])
    if (data or "fashion_mnist") == "fashion_mnist":
        config.num_epochs = 1.2
        config.lr_decay_epochs = 0.25
    return config
