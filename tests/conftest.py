"""Shared test set-up: quiet TensorFlow, Keras on the JAX backend, CPU only, and one persistent
compilation cache for the session (`tests/helpers.py`), which the pytest-xdist workers inherit
from the controller and the controller removes at the end. The `slow` marker: `uv run pytest
-m "not slow"` is the fast tier for the edit loop.

The tests compile with JAX's `jax_disable_most_optimizations` (XLA's backend optimization
level 0; the processes they start inherit it): compilation, most of the suite's time, takes
about half as long (measured: 103 → 53 CPU-seconds for the lowering test), and the tests check
what the code computes, which optimization does not change beyond rounding; each comparison
is between programs built alike. Speed is measured with the default level, in `benchmarks/`.

The slow tests run first, and pytest-xdist's workers take tests from each other's queues when
theirs run out (`--dist worksteal`, pyproject.toml): the long tests then start early and the
short ones fill the end, instead of one worker finishing a long test while the other waits."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import shutil  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import CACHE  # noqa: E402  (names the cache before workers start)


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache():
    jax.config.update("jax_compilation_cache_dir", CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first


def pytest_sessionfinish(session):
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the controller, or a run without workers
        shutil.rmtree(CACHE, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A tiny fake ImageNet in each form labs hold it (tests/scripts/fake_imagenet.py), made once per
# test process: 4 classes, 6 training and 3 validation images each (12 validation images in
# the ILSVRC2012 tars, labelled by TFDS's list).

def _fake(tmp_path_factory, form: str) -> str:
    from tests.scripts import fake_imagenet
    folder = str(tmp_path_factory.mktemp(form))
    getattr(fake_imagenet, form)(folder)
    return folder


@pytest.fixture(scope="session")
def ilsvrc_tars(tmp_path_factory):
    """A folder with ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar."""
    return _fake(tmp_path_factory, "ilsvrc_tars")


@pytest.fixture(scope="session")
def tfds_imagenet(tmp_path_factory, ilsvrc_tars):
    """A TFDS data_dir with imagenet2012 prepared from the fake tars by the prepare command."""
    from inception_flax.run import preparation
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    preparation.prepare("imagenet2012", data_dir, ilsvrc_tars, say=lambda *_: None)
    return data_dir


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    return _fake(tmp_path_factory, "image_folder")


@pytest.fixture(scope="session")
def slim_tfrecords(tmp_path_factory):
    return _fake(tmp_path_factory, "slim_tfrecords")
