"""The entry points' switch to TCMalloc (inception_flax/utils/malloc.py)."""

import os
import subprocess
import sys

import pytest

from inception_flax.utils import malloc

REPORT = ("from inception_flax.utils import malloc; malloc.use_tcmalloc(); import os; "
          "print(malloc.active(), os.environ.get('LD_PRELOAD', ''), "
          "os.environ.get('TCMALLOC_RELEASE_RATE', ''))")


def run(**env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", malloc.ENV, "TCMALLOC_RELEASE_RATE")}
    out = subprocess.run([sys.executable, "-c", REPORT], env=dict(environ, **env),
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(malloc.find() is None, reason="TCMalloc is not installed "
                    "(Debian: libtcmalloc-minimal4; .ci/run installs it)")
def test_reexecutes_once_with_tcmalloc_preloaded():
    active, preload, release = run()
    assert active == "tcmalloc" and preload == malloc.find() and release == "0"


def test_system_allocator_on_request():
    assert run(**{malloc.ENV: "system"}) == ["system"]


def test_active_reads_the_preload():
    assert malloc.active() == ("tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "")
                               else "system")
