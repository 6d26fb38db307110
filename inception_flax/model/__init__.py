"""The model: the network as the paper and TF-slim draw it, and what it costs.

`architecture` (the frozen dataclass of every ablation, and the presets), `layers` (one
TF-slim layer as data, and the modules that build it), `blocks` (one Flax module per figure),
`network` (the whole network, `create`), `lowering` (how the network is handed to XLA on each
backend: the one place that asks which backend runs) with `cpu_ops` (the CPU lowering), `cost`
(parameters and multiply-adds from shapes, width solved to a budget) and `keras_weights`
(Keras's weights imported).

May import: `inception_flax.utils`, JAX and Flax. Nothing of `run` or `sweeps`
(`pyproject.toml`'s import-linter contract, checked by `tests/test_layers.py`).
"""
