"""The one command-line convention of the entry points: absl flags, spelled `--snake_case`
(`--flag=value` or `--flag value`; booleans `--flag` / `--noflag`), each documented in
`--help`, as `run_experiment.py` takes them.

In the commands built on `parse` (`python -m inception_flax.cost|results|report`), older
spellings keep working (`compat`: hyphenated flag names, and where a command took one, a
positional argument); `run_experiment.py` (`absl_parser`) never had them.
"""

from __future__ import annotations

import re
import sys
from typing import Callable

from absl import flags

from inception_flax.utils import compat, disk

# Exit codes of the entry points.
EXIT_FAILED = 1  # a run failed or diverged (see its final.json)
EXIT_BAD_INPUT = 2  # a bad config, flag, data path or workdir: nothing was written
EXIT_DISK = 3  # the disk filled up or turned read-only: nothing was lost; make room, rerun


def report(error: BaseException, workdir: str) -> int | None:
    """Says `error` in one sentence on stderr and returns the exit code, where it is the
    disk's fault (`EXIT_DISK`) or bad input (a ValueError or FileNotFoundError:
    `EXIT_BAD_INPUT`); None for anything else (a bug: let its traceback show)."""
    fault = disk.fault_of(error)
    if fault:
        print(f"error: {disk.describe(fault, workdir)}", file=sys.stderr)
        return EXIT_DISK
    if isinstance(error, (ValueError, FileNotFoundError)):
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return None


HELP_FLAGS = ("help", "h", "?", "helpshort", "helpfull", "helpxml")  # absl's, each exits 1


def absl_parser(flag_values: flags.FlagValues, argv_prefix: str = "--config."):
    """A `flags_parser` for `absl.app.run`: a flag it cannot take (an unknown flag or config
    field, a value of the wrong type) is one sentence on stderr and exit code 2, where absl
    and ml_collections print a traceback or two lines and exit 1; asked for help (`--help`,
    `--helpfull`, ...), it prints absl's and exits 0, where absl exits 1."""
    def parse(argv):
        try:
            return flag_values(argv)
        except SystemExit as stop:
            if stop.code == 1 and any(a.lstrip("-").split("=")[0] in HELP_FLAGS for a in argv[1:]):
                sys.exit(0)
            raise
        except Exception as error:  # noqa: BLE001 (absl and ml_collections raise many kinds)
            print(f"error: {_flag_problem(error, argv, argv_prefix)}; see --helpfull, or the "
                  "config file for its fields.", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
    return parse


def _flag_problem(error: Exception, argv: list[str], prefix: str) -> str:
    """What was wrong with a flag, from the exception absl or ml_collections raised."""
    text = " ".join(str(error).replace("\\n", " ").split()).replace("\\'", "'")
    if "Error whilst parsing config file" in str(error):  # get_config raised: its last line
        last = re.findall(r"^\w*(?:Error|Exception): (.+)$", str(error), re.MULTILINE)
        return f"--config {_config_arg(argv)}: {last[-1] if last else text}".rstrip(".")
    if isinstance(error, SyntaxError):
        return f"--config {_config_arg(argv)}: {text}"
    if isinstance(error, AttributeError) and "attribute 'get_config'" in text:
        return (f"--config {_config_arg(argv)} defines no get_config(); a config file defines "
                "get_config() returning a ConfigDict (e.g. configs/fashion_mnist.py)")
    if isinstance(error, (AttributeError, KeyError)):  # ml_collections: no such field
        name = re.search(r"'(\w+)'", text)
        guess = re.search(r'Did you mean "(\w+)"', text)
        flag = next((a.partition("=")[0] for a in argv if name and a.startswith(prefix)
                     and a.partition("=")[0].endswith("." + name.group(1))), None)
        return (f"{flag or 'a config flag'} names no config field"
                + (f" (did you mean {guess.group(1)}?)" if guess else ""))
    return text.rstrip(".")


def _config_arg(argv: list[str]) -> str | None:
    """The value of `--config` in `argv` (`--config X` or `--config=X`), None where absent."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.partition("=")[2]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def loaded_config(flag):
    """The config a `--config` flag (`flags.FLAGS["config"]`) loaded. Where its file could not
    be read, ml_collections defers the error to the config's first use: said here in one
    sentence, exit code 2."""
    try:
        flag.value.get  # noqa: B018 (the first use: raises the deferred error)
    except OSError:
        print(f"error: --config {flag.config_filename}: no such file, or it cannot be read; "
              "give a config or experiment file, e.g. experiments/quickstart.py or "
              "configs/fashion_mnist.py.", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    return flag.value


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
    argv = [compat.snake_case(arg) for arg in argv]
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


def last_wins(argv: list[str], prefix: str) -> list[str]:
    """`argv` with only the last occurrence of each flag that starts with `prefix`
    (`--config.sweep.seeds=(0,1) --config.sweep.seeds=(0,)` → the second): ml_collections
    appends a tuple field's repeated values instead of replacing them, as every other field
    is replaced. Both spellings, `--flag=value` and `--flag value`, are read."""
    spans, i = [], 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        width = 1
        if arg.startswith(prefix):
            name, sep, _ = arg.partition("=")
            if not sep and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                width = 2
            spans.append((name, i, width))
        i += width
    last = {name: start for name, start, _ in spans}
    dropped = {j for name, start, width in spans if last[name] != start
               for j in range(start, start + width)}
    return [arg for j, arg in enumerate(argv) if j not in dropped]
