"""The one command-line convention of the entry points: absl flags, spelled `--snake_case`
(`--flag=value` or `--flag value`; booleans `--flag` / `--noflag`), each documented in
`--help`, as `run_experiment.py` takes them.

Older spellings keep working: hyphenated flag names (`--image-size`) and, where a command took
one, a positional argument (`python -m inception_flax.report DIR`).
"""

from __future__ import annotations

import sys
from typing import Callable

from absl import flags


def parse(argv: list[str] | None, program: str, description: str,
          define: Callable[[flags.FlagValues], None],
          positional: str | None = None) -> flags.FlagValues | int:
    """Parses `argv` (default: sys.argv[1:]) into fresh flag values built by `define`.

    Returns the flag values, or an exit code after printing `--help` (0) or a one-sentence
    error (2). `positional`: the flag that a single positional argument sets (old spelling).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    values = flags.FlagValues()
    define(values)
    if {"-h", "--help", "--helpfull"} & set(argv):
        print(f"usage: {program} [flags]\n\n{description}\n\n"
              + values.get_help(include_special_flags=False))
        return 0
    argv = [_snake_case(arg) for arg in argv]
    try:
        rest = values([program, *argv])[1:]
    except flags.Error as error:
        print(f"error: {error}; see {program} --help.", file=sys.stderr)
        return 2
    if positional and len(rest) == 1 and values[positional].value is None:
        values[positional].value = rest[0]
        rest = []
    if rest:
        print(f"error: unexpected argument(s) {' '.join(rest)}; see {program} --help.",
              file=sys.stderr)
        return 2
    return values


def _snake_case(arg: str) -> str:
    """`--image-size=299` → `--image_size=299`: the older hyphenated spelling."""
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + sep + value
