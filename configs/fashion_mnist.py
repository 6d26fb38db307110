"""The default data: Fashion-MNIST (Debian's `dataset-fashion-mnist`, else TFDS), resized to the
variant's input size with 3 channels. The paper's optimizer, gradient clipping, label smoothing,
weight decay and weight average, with a width, schedule, batch and batch-norm decay sized for a
2-core CPU: a quarter-width Inception-v3 without its auxiliary head on 75×75 inputs (the
smallest the network takes) for 4 epochs. The recipe table of docs/training.md lists every difference from
the paper's recipe.

    python run_experiment.py --config configs/fashion_mnist.py --workdir runs/fashion
"""

from configs import imagenet_inception_v3, inception


def get_config():
    config = imagenet_inception_v3.get_config()
    config.dataset = "fashion_mnist_debian"
    # config.data_dir: the IDX folder; None: /usr/share/datasets/fashion-mnist
    config.train_split, config.eval_split = "train", "test"
    config.in_memory = True
    config.image_size = 75
    config.preprocessing = "resize_flip"
    config.color_distortion = False

    # The auxiliary head needs 107×107 inputs to train; at 75×75 it is left out.
    config.model = inception.model(
        "inception_v3", num_classes=10, depth_multiplier=0.25, aux_head="none",
        batch_norm_decay=0.99,  # 0.9997 needs far more steps than a few epochs give
        # At a quarter width XLA's own convolutions train faster on a CPU than the im2col
        # lowering "auto" picks there (benchmarks/NOTES.md).
        lowering="xla")

    config.global_batch_size = 64
    config.base_batch_size = 64  # learning_rate is the rate at this batch
    config.learning_rate = 0.045
    config.lr_decay_epochs = 0.5
    config.lr_decay_rate = 0.8
    config.ema_decay = 0.999
    config.num_epochs = 4.0

    config.eval_batch_size = 500
    config.log_every_steps = 100
    config.checkpoint_every_steps = 1000
    return config
