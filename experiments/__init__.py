"""Built-in experiments. Each file's `get_config(data)` returns a training config with a
`sweep` field; `data` is "fashion_mnist" (default) or "imagenet":

    python run_experiment.py --config experiments/factorization.py --workdir runs/fact
    python run_experiment.py --config experiments/factorization.py:imagenet --workdir runs/fi

Each docstring says which grids its comparison acts on with the default data and how long it
took on one of this project's 2-core CPU machines (which one, and when); `--dry_run` prints the grids of every run and
warns where a kernel is larger than its grid.
"""

import ml_collections

from configs import fashion_mnist, imagenet_inception_v3

DATA = {"fashion_mnist": fashion_mnist.get_config, "imagenet": imagenet_inception_v3.get_config}

# A run of half an epoch or so on the default data: `configs/fashion_mnist.py`'s schedule,
# weight average and batch-norm decay are made for 4 epochs; over a few hundred steps the
# moving statistics and the average would lag the weights (measured: 25% top-1 on the test
# set against 78% on the training batches). Batch 32, the rate decayed every 0.1 epoch.
SHORT_RUN = {"global_batch_size": 32, "learning_rate": 0.09, "lr_decay_epochs": 0.1,
             "ema_decay": 0.99, "model.batch_norm_decay": 0.9, "log_every_steps": 100}


# The margin of equivalence of the built-in experiments, in points of top-1 error (the largest
# loss they call "nothing"; `sweep.margin`, docs "Tables that decide"). ImageNet: 0.3, the
# smallest gain table 3 of the paper reports for a design choice (+ RMSProp, + label
# smoothing), so that "equivalent" means "less than anything the paper counts as a gain".
# Fashion-MNIST at 75×75 (the default data): 1.0, a seed's spread there being 0.4-0.9 points
# (the committed tables), so that equivalence within ±1 takes 5-10 seeds of each, and a proxy
# of 10 classes at a quarter of ImageNet's side does not resolve the paper's 0.3-1.2 points.
MARGIN = {"fashion_mnist": 1.0, "imagenet": 0.3}


def data_name(data: str | None) -> str:
    """The data an experiment was asked for: "fashion_mnist" (the default) or "imagenet"."""
    data = data or "fashion_mnist"
    if data not in DATA:
        raise ValueError(f"experiment data {data!r} is not valid; use "
                         f"{' or '.join(DATA)} (e.g. --config experiments/NAME.py:imagenet).")
    return data


def base(data: str | None, default_data: dict | None = None,
         **sweep) -> ml_collections.ConfigDict:
    """The training config for `data` (default "fashion_mnist"), with `default_data`'s
    overrides applied on the default data only, and a sweep section (defaults: one axis,
    3 seeds)."""
    data = data_name(data)
    config = DATA[data]()
    if data == "fashion_mnist":
        config.update_from_flattened_dict(default_data or {})
    config.sweep = ml_collections.ConfigDict(dict(
        axes=[], combine="product", seeds=(0, 1, 2), fixed_cost=False, fixed_cost_tolerance=0.01,
        fixed_cost_exempt=(), baseline="", only="", paper={}, notes={},
        seeds_per_program=1, alpha=0.05, margin=MARGIN[data], until_decided=False,
        min_seeds=3, max_seeds=3, seeds_per_stage=1,
        # How the verdicts are made (inception_flax/sweeps/sequential.py, decide.py): the
        # spending function and exact boundaries of a sweep run until decided, and intervals
        # that include the test set's sampling (claims about the data distribution).
        spending="power", boundaries="exact", population="distribution"))
    config.sweep.update(sweep)
    return config
