"""A sweep's tables and figures, again, from what is done: the command line of
`inception_flax.sweeps.tables`.

    python -m inception_flax.results --workdir DIR

writes DIR/results.md, results.tex, results.csv and the figures (docs/sweeps.md says what
each number means). A sweep run until decided has its decisions made again from the records
and checked against DIR/decisions.json (`--rebuild_decisions` writes it anew).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from inception_flax.run import run_dir
from inception_flax.sweeps.tables import collect, summarize, write
from inception_flax.utils import cli, compat

__all__ = ["collect", "summarize", "write", "main"]


def main(argv=None) -> int:
    def define(values):
        flags.DEFINE_string("workdir", None, "The sweep's --workdir (it holds sweep.json).",
                            flag_values=values)
        flags.DEFINE_bool("rebuild_decisions", False, "A sweep run until decided: its "
                          "decisions are made again from the records and a decisions.json "
                          "that disagrees is refused; with this flag it is written anew from "
                          "the records, saying what changed.", flag_values=values)
    values = cli.parse(argv, "python -m inception_flax.results",
                       "Tables (Markdown, LaTeX, CSV) and figures of a sweep's results, from "
                       "what is done.", define, positional=compat.REPORT_POSITIONAL)
    if isinstance(values, int):
        return values
    if not values.workdir:
        print("error: no --workdir given; give the --workdir of a sweep (it holds sweep.json), "
              "e.g. --workdir runs/quickstart.", file=sys.stderr)
        return 2
    workdir = values.workdir
    try:
        write(workdir, values.rebuild_decisions)
    except run_dir.Damaged as damaged:
        print(f"error: {damaged}; run the sweep's command again to write it anew.",
              file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as bad:  # decisions that disagree with the records
        print(f"error: {bad}", file=sys.stderr)
        return 2
    with open(os.path.join(workdir, "results.md")) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
