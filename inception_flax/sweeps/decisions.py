"""The decisions of a sweep run until decided, as a function of its records: every command
(the sweep's and the results command alike) makes them again from the runs' `final.json`
(`replay`), and `DIR/decisions.json` is their log, checked against them (`settle`).

A look is made once every run it needs has finished (done or diverged) under the sweep's
config: a record made under another config (its identity differs from the plan's) counts as
not finished, so a stale run never decides anything. The log holds the design, fixed before
the first look (α, margin, looks, seeds, baseline, compared variants), each look made (its
seeds and every open variant's verdict), and the state after the last (each variant's verdict,
look and seeds). A log that disagrees with the records (edited by hand, damaged, or records
changed since) is refused in one sentence naming the look and the two verdicts; the way out,
`--rebuild_decisions`, writes it anew from the records and says what changed. A missing log
is rebuilt from the records and the design (`sweep.json` holds the sweep's settings), and the
command says so.
"""

from __future__ import annotations

import datetime
import os
import sys

from inception_flax.run import run_dir
from inception_flax.sweeps import decide, sequential
from inception_flax.utils import files

FINISHED = ("done", "diverged")  # a failed run is retried: it holds its look back
NAME = "decisions.json"
REBUILD = "--rebuild_decisions"


class Mismatch(ValueError):
    """The log disagrees with the records, or cannot be read."""


def design_from(sweep: dict, variants: list[str]) -> tuple[sequential.Design, dict]:
    """The design of a sweep run until decided from its settings (`config.sweep`, or the
    `sweep` of `sweep.json`) and its variants in order, and what the log fixes with it: the
    design, the seeds in the order they are used, the baseline and the compared variants."""
    baseline = sweep.get("baseline") or variants[0]
    looks = sequential.looks(sweep["min_seeds"], sweep["max_seeds"], sweep["seeds_per_stage"])
    seeds = list(dict.fromkeys(sweep["seeds"]))[:sweep["max_seeds"]]
    compared = [v for v in variants if v != baseline]
    margin = sweep.get("margin")
    # A sweep recorded before 2026-12-03 has no spending, boundaries or population: its
    # design is the rule it was decided by (utils/compat.py).
    design = sequential.Design(float(sweep["alpha"]), float(margin) if margin else None,
                               len(compared), looks, sweep.get("spending", "power"),
                               sweep.get("boundaries", "bonferroni"),
                               sweep.get("population", "eval_set"))
    return design, {"design": design.to_json(), "seeds": seeds, "baseline": baseline,
                    "compared": compared}


def open_variants(fixed: dict, state: dict) -> list[str]:
    return [v for v in fixed["compared"] if not state["variants"].get(v, {}).get("final")]


def replay(workdir: str, design: sequential.Design, fixed: dict, identities: dict) -> dict:
    """The decisions the records allow: every look, in order, whose runs have all finished
    under the planned config (`identities`: {(variant, seed): identity digest}; a record of
    another identity is not finished). A verdict reached is frozen."""
    state = {**fixed, "last_look": -1, "variants": {}, "looks": []}
    while state["last_look"] + 1 < len(design.looks) and open_variants(fixed, state):
        look = state["last_look"] + 1
        records = _records(workdir, [fixed["baseline"], *open_variants(fixed, state)],
                           fixed["seeds"][:design.looks[look]], identities)
        if records is None:
            break  # this look's runs have not all finished
        _look(design, fixed, state, look, records)
    return state


def _records(workdir: str, variants: list[str], seeds: list[int],
             identities: dict) -> dict | None:
    """{variant: {seed: its done record}} of these variants' runs of these seeds, or None
    where one of them has not finished under its planned identity."""
    records = {}
    for variant in variants:
        records[variant] = {}
        for seed in seeds:
            final = run_dir.read_final(os.path.join(workdir, variant, f"seed{seed}"),
                                       warn=False)
            if not final or final.get("status") not in FINISHED:
                return None
            planned = identities.get((variant, seed))
            if planned and isinstance(final.get("config"), dict) \
                    and run_dir.digest(final["config"]) != planned:
                return None  # made under another config: stale
            if final["status"] == "done":
                records[variant][seed] = final
    return records


def _look(design: sequential.Design, fixed: dict, state: dict, look: int, records: dict) -> None:
    """The decisions of one look for every open variant."""
    n, last = design.looks[look], look == len(design.looks) - 1
    verdicts, difference, equivalence = {}, *design.levels(look)
    for variant in open_variants(fixed, state):
        order, base = fixed["seeds"][:n], records[fixed["baseline"]]
        v, b, paired = decide.errors_compared(records[variant], base, order)
        examples = (decide.examples_compared(records[variant], base, order, paired)
                    if design.population == "distribution" else None)
        verdict = (str(decide.compare(v, b, paired, difference, design.margin, equivalence,
                                      examples)["verdict"])
                   if min(len(v), len(b)) else "undecided")
        verdicts[variant] = verdict
        state["variants"][variant] = {"verdict": verdict, "look": look, "seeds": n,
                                      "final": verdict != "undecided" or last}
    state["looks"].append({"look": look, "seeds": n, "verdicts": verdicts})
    state["last_look"] = look


def read_log(path: str) -> dict | None:
    """The log at `path`; None where there is none; `Mismatch` where it is damaged (not the
    object this module writes)."""
    try:
        log = run_dir.read_json(path)
    except run_dir.Damaged as damaged:
        raise Mismatch(f"{damaged}; run the same command with {REBUILD} to write it anew "
                       "from the records.") from None
    if log is None and not os.path.exists(path):
        return None
    keys = ("design", "seeds", "baseline", "compared", "last_look", "variants")
    if not isinstance(log, dict):
        what = f"it holds {type(log).__name__ if log is not None else 'null'}, not an object"
    else:
        lacking = [k for k in keys if k not in log]
        what = (f"it lacks {', '.join(lacking)}" if lacking else
                "its variants are not an object" if not isinstance(log["variants"], dict)
                else None)
    if what:
        raise Mismatch(f"{path} is damaged (not the log of decisions this program writes: "
                       f"{what}); run the same command with {REBUILD} to write it anew from "
                       "the records.")
    return log


def design_changes(log: dict, fixed: dict) -> list[str]:
    """What `fixed` (this config's design) changes in the log's, e.g. "alpha 0.05 → 0.1"."""
    changes = []
    for key, value in fixed.items():
        if key == "design":
            changes += [f"{field} {log['design'].get(field)!r} → {value[field]!r}"
                        for field in value if log["design"].get(field) != value[field]]
        elif log.get(key) != value:
            changes.append(f"{key} {log.get(key)!r} → {value!r}")
    return changes


def differences(log: dict, state: dict) -> list[str]:
    """Where the log disagrees with the decisions the records give, one clause each (looks
    the records make beyond the log's are new, not a disagreement)."""
    said = []
    replayed = {entry["look"]: entry["verdicts"] for entry in state["looks"]}

    def check(look, variant, verdict):
        now = replayed.get(look, {}).get(variant) if isinstance(look, int) else None
        if now != verdict:
            at = f"at look {look + 1} " if isinstance(look, int) else ""
            said.append(f"{at}{variant} is {verdict!r} in the log and "
                        f"{now if now else 'not decided'!r} from the records")
    for entry in log.get("looks") or []:  # each look the log records
        for variant, verdict in (entry.get("verdicts") or {}).items():
            check(entry.get("look"), variant, verdict)
    for variant, entry in log["variants"].items():  # each variant's latest look
        entry = entry if isinstance(entry, dict) else {}
        check(entry.get("look"), variant, entry.get("verdict"))
    if log["last_look"] > state["last_look"] and not said:
        said.append(f"the log has made {log['last_look'] + 1} look(s) and the records "
                    f"{state['last_look'] + 1}")
    return list(dict.fromkeys(said))


def settle(workdir: str, design: sequential.Design, fixed: dict, identities: dict,
           rebuild: bool = False, say=None) -> dict:
    """The decisions from the records (`replay`), checked against the log and written to it
    (under a lock: shards may look at once). Refused (`Mismatch`, or a ValueError naming
    what changed for a changed design) where the log disagrees, unless `rebuild`, which
    writes it anew and says what changed. A missing log is rebuilt, and said."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    path = os.path.join(workdir, NAME)
    os.makedirs(workdir, exist_ok=True)
    with files.exclusive(os.path.join(workdir, ".decisions.lock")):
        try:
            log = read_log(path)
        except Mismatch:
            if not rebuild:
                raise
            log = None
            say(f"{path} was damaged: written anew from the records")
        if log is not None and log["last_look"] >= 0:
            changed = design_changes(log, fixed)
            if changed:
                raise ValueError(f"{path} fixed this sweep's design at its first look, and "
                                 f"this config changes its {'; '.join(changed)}; restore "
                                 "them, or use another --workdir.")
        state = replay(workdir, design, fixed, identities)
        if log is not None:
            diffs = differences(log, state)
            if diffs and not rebuild:
                raise Mismatch(f"{path} disagrees with the records: {diffs[0]}"
                               + (f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else "")
                               + f"; it was edited or damaged, or records changed since: run "
                               f"the same command with {REBUILD} to write it anew from the "
                               "records.")
            for diff in diffs:
                say(f"{NAME} rebuilt: {diff}")
        elif state["last_look"] >= 0:
            say(f"{path} was missing: rebuilt from the records ({state['last_look'] + 1} "
                "look(s))")
        if log is None or (log["last_look"], log["variants"]) != (state["last_look"],
                                                                 state["variants"]):
            files.write_json_atomically(path, state)  # new looks, rebuilt or anew
    return state


def set_aside(workdir: str, why: str = "stale") -> str | None:
    """Moves the log aside as `decisions.json.<why>-<date>` (its looks used runs now set
    aside); returns the new path, None where there was none."""
    path = os.path.join(workdir, NAME)
    if not os.path.exists(path):
        return None
    moved = f"{path}.{why}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    os.replace(path, moved)
    return moved
