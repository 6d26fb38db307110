"""Shared test set-up: quiet TensorFlow, Keras on the JAX backend, CPU only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _remove_compilation_cache():
    """Subprocess runs share a compilation cache (tests/test_train.py); remove it at the end."""
    yield
    shutil.rmtree(os.path.join(os.environ.get("TMPDIR", "/tmp"),
                               f"inception_flax_test_cache_{os.getpid()}"), ignore_errors=True)
