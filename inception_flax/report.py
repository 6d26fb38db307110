"""The older name of `python -m inception_flax.results` (README commands and committed result
READMEs use it): `python -m inception_flax.report DIR` writes a sweep's tables and plots."""

import sys

from inception_flax.results import main

if __name__ == "__main__":
    sys.exit(main())
