"""`python -m inception_flax.report DIR`: the older name of `python -m inception_flax.results`
(kept since 2026-11-28; `inception_flax/utils/compat.py` lists every old name)."""

import sys

from inception_flax.results import main

if __name__ == "__main__":
    sys.exit(main())
