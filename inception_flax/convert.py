"""Keras's Inception-v3 weights in this network: `from_keras(keras_model_or_path)` (needs
keras; `inception_flax.model.keras_weights`)."""

from inception_flax.model.keras_weights import from_keras

__all__ = ["from_keras"]
