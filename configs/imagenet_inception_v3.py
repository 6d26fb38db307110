"""The paper's recipe on ImageNet: section 8 of "Rethinking the Inception Architecture" and
TF-slim's training defaults, each number with its source. The data in any of the three forms
labs hold it (docs/training.md, "Training on ImageNet"): TFDS's `imagenet2012` (prepared from
ILSVRC2012's tar files by `python -m inception_flax.prepare`), an ImageFolder tree, or TF-slim's
TFRecords.

    python -m inception_flax.prepare --dataset=imagenet2012 --data_dir=/data/tfds
    python run_experiment.py --config configs/imagenet_inception_v3.py --workdir runs/v3 \\
        --config.data_dir=/data/tfds
    python run_experiment.py --config configs/imagenet_inception_v3.py --workdir runs/v3 \\
        --config.dataset=image_folder --config.data_dir=/data/imagenet
"""

import ml_collections
from ml_collections import config_dict

from configs import inception


def get_config():
    config = ml_collections.ConfigDict()
    config.seed = 0

    # Data: a TFDS name, "image_folder" or "slim_tfrecords" (inception_flax/run/image_sources.py).
    config.dataset = "imagenet2012"
    config.data_dir = config_dict.placeholder(str)  # None: TFDS's default (~/tensorflow_datasets)
    config.train_split = "train"
    config.eval_split = "validation"  # an ImageFolder's val/ where it has no validation/
    config.in_memory = False  # stream with tf.data
    config.image_size = 299
    config.preprocessing = "inception"  # TF-slim's inception_preprocessing
    config.color_distortion = True  # TF-slim's preprocess_for_train distorts colour
    config.shuffle_buffer = 16_384
    config.data_threads = 16

    # Model: the released Inception-v3 (its batch-norm decay 0.9997 and epsilon 1e-3 are
    # TF-slim's inception_v3_arg_scope defaults), with as many classes as the data has
    # (num_classes left None: ImageNet's 1,000, or a subset's).
    config.model = inception.model("inception_v3")
    config.sync_batch_norm = False  # each replica normalizes its own batch, as in the paper

    # Optimizer: section 8.
    config.optimizer = "rmsprop"  # TF1 RMSPropOptimizer
    config.rmsprop_decay = 0.9  # paper
    config.rmsprop_epsilon = 1.0  # paper
    config.momentum = 0.9  # TF-slim's train_image_classifier flag
    config.learning_rate = 0.045  # paper
    # The paper trained 50 replicas × 32 images; its 0.045 is taken for that aggregate batch and
    # scaled linearly for others: lr = learning_rate × global_batch_size / base_batch_size.
    config.base_batch_size = 1600
    config.global_batch_size = 1600
    config.lr_schedule = "exponential"
    config.lr_decay_rate = 0.94  # paper: "decayed every two epochs using an exponential rate of 0.94"
    config.lr_decay_epochs = 2.0  # paper
    config.warmup_epochs = 0.0
    config.gradient_clip_norm = 2.0  # paper: "gradient clipping with threshold 2.0"
    config.weight_decay = 4e-5  # TF-slim inception_v3_arg_scope
    config.label_smoothing = 0.1  # paper, section 7
    config.aux_loss_weight = 0.4  # TF-slim / TPU reference
    config.ema_decay = 0.9999  # TF's inception training code (moving-average decay)
    config.num_epochs = 100.0  # paper: 100 epochs

    # Bookkeeping.
    config.eval_batch_size = 800
    config.max_eval_examples = 0  # 0: the whole evaluation split
    config.log_every_steps = 100
    config.eval_every_steps = 0  # 0: at the end only
    config.eval_raw_weights = True  # the raw weights too, besides their average (the EMA)
    config.checkpoint_every_steps = 2000
    config.keep_checkpoints = 3
    config.tensorboard = True
    config.compilation_cache = True
    return config
