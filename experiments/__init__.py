"""Built-in experiments. Each file's `get_config(data)` returns a training config with a
`sweep` field; `data` is "fashion_mnist" (default) or "imagenet":

    python run_experiment.py --config experiments/factorization.py --workdir runs/fact
    python run_experiment.py --config experiments/factorization.py:imagenet --workdir runs/fi
"""

import ml_collections

from configs import fashion_mnist, imagenet_inception_v3


def base(data: str | None, **sweep) -> ml_collections.ConfigDict:
    """The training config for `data`, with a sweep section (defaults: one axis, 3 seeds)."""
    data = data or "fashion_mnist"
    bases = {"fashion_mnist": fashion_mnist.get_config,
             "imagenet": imagenet_inception_v3.get_config}
    if data not in bases:
        raise ValueError(f"experiment data {data!r} is not valid; use "
                         f"{' or '.join(bases)} (e.g. --config experiments/NAME.py:imagenet).")
    config = bases[data]()
    config.sweep = ml_collections.ConfigDict(dict(
        axes=[], combine="product", seeds=(0, 1, 2), fixed_cost=False, baseline="",
        paper={}))
    config.sweep.update(sweep)
    return config
