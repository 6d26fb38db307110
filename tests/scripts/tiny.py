"""The smallest honest training config: the Fashion-MNIST recipe at 1/10 width with one Inception
module per grid (the training machinery under test does not depend on how many there are, and
the program compiles in about half the time)."""

from configs import fashion_mnist

STEPS_PER_EPOCH = 60_000 // 16


def tiny_config(steps: int = 6, **overrides):
    config = fashion_mnist.get_config()
    config.model.depth_multiplier = 0.1  # every layer at min_depth 16 or a little more
    config.model.modules_per_grid = (1, 1, 1)
    config.global_batch_size = 16
    config.eval_batch_size = 100
    config.max_eval_examples = 200
    config.num_epochs = steps / STEPS_PER_EPOCH
    config.log_every_steps = 2
    config.checkpoint_every_steps = 4
    config.tensorboard = False
    config.compilation_cache = False
    config.update(overrides)
    return config
