"""A sweep run until decided (`sweep.until_decided`): its looks, its decisions and the runs of
its next stage (the design and its error: `sequential`).

    config.sweep.until_decided = True
    config.sweep.min_seeds, config.sweep.max_seeds, config.sweep.seeds_per_stage = 4, 24, 4
    config.sweep.margin = 1.0             # points of top-1 error; 0: no equivalence verdicts
    config.sweep.alpha = 0.05             # family-wise, over the variants and the looks
    config.sweep.seeds = tuple(range(24))  # the seeds, in the order they are used

Every invocation first reads the records and makes the decisions of every look whose runs have
all finished (`decide_looks`, written to `DIR/decisions.json`), then trains the runs of the next
look: the undecided variants' and the baseline's next seeds. Done alone, one command runs stage
after stage until every variant is decided or the last look is made. As one shard of several
(`--shard`, a Slurm array) it runs its part of one stage and exits: a shard that finds a stage
unfinished decides nothing, and the next invocation (e.g. the same array again, submitted with
`--dependency=afterok:<job>`) makes the look and starts the next stage. With `--workers`, the
command that starts the workers decides between stages. Decisions are a function of the
records, so a sweep killed anywhere and started again reaches the same decisions with the same
seeds. The design (α, margin, looks, seeds, baseline, variants) is recorded with the first
look and a changed one is refused after it.
"""

from __future__ import annotations

import os

from inception_flax.run import run_dir
from inception_flax.sweeps import decide, execute, plan, sequential, workers
from inception_flax.utils import files

FINISHED = ("done", "diverged")  # a failed run is retried: it holds its look back


def design_of(config, runs: list) -> tuple[sequential.Design, dict]:
    """The design of a sweep run until decided and what `decisions.json` fixes with it: the
    design, the seeds in the order they are used, the baseline and the compared variants (a
    ValueError says what is wrong)."""
    s = config.sweep
    variants = list(dict.fromkeys(run.variant for run in runs))
    baseline = plan.baseline_of(config)
    if baseline not in variants:
        raise ValueError(f"sweep.until_decided compares every variant with the baseline "
                         f"{baseline!r}, which sweep.only leaves out; select it too.")
    looks = sequential.looks(s.min_seeds, s.max_seeds, s.seeds_per_stage)
    seeds = list(dict.fromkeys(run.seed for run in runs))
    if len(seeds) < s.max_seeds:
        raise ValueError(f"sweep.until_decided uses up to max_seeds={s.max_seeds} seeds, and "
                         f"sweep.seeds lists {len(seeds)}; list at least {s.max_seeds} (e.g. "
                         f"--config.sweep.seeds='{tuple(range(s.max_seeds))}').")
    per_program = plan.seeds_per_program(config)
    if s.seeds_per_stage % per_program or s.min_seeds % per_program:
        raise ValueError(f"sweep.seeds_per_stage={s.seeds_per_stage} and min_seeds="
                         f"{s.min_seeds} must be multiples of seeds_per_program={per_program}, "
                         "so that each stage's seeds make whole programs.")
    compared = [v for v in variants if v != baseline]
    if not compared:
        raise ValueError("sweep.until_decided needs a variant besides the baseline.")
    design = sequential.Design(float(s.alpha), float(s.margin) or None, len(compared), looks)
    return design, {"design": design.to_json(), "seeds": seeds[:s.max_seeds],
                    "baseline": baseline, "compared": compared}


def run(config, workdir: str, runs: list, shard: str | None, train_fn, stale: dict,
        retry_diverged: bool) -> int:
    """Stage after stage (one stage as a shard), as the module docstring says; returns how
    many runs failed or diverged."""
    one_stage = shard is not None or workers.slurm_shard() is not None
    bad = 0
    while True:
        needed, scheduled = next_units(config, workdir, runs)
        if not needed:
            return bad
        units = plan.shard_of(plan.groups(needed, plan.seeds_per_program(config)), shard)
        outcome = execute.run_units(units, workdir, scheduled, train_fn, stale, retry_diverged)
        if outcome is None:  # preempted
            return bad
        bad += outcome
        # A run left to train (failed: the next command retries it; or trained by another
        # command) holds its look back: stop, rather than plan the same stage again.
        if one_stage or left_to_train(workdir, needed):
            return bad


def left_to_train(workdir: str, runs: list) -> list:
    """The runs neither done nor diverged: failed, preempted, trained by another command, or
    not begun."""
    return [run for run in runs if execute.status_of(workdir, run) not in FINISHED]


def next_units(config, workdir: str, runs: list) -> tuple[list, list]:
    """Makes the looks the finished runs allow (`decide_looks`), writes the plan of every run
    scheduled so far (`sweep.json`) and says what comes next; returns the runs of the next
    stage (none once every variant is decided or the last look made) and the scheduled ones.
    The command that starts `--workers` calls it between stages."""
    design, fixed = design_of(config, runs)
    state = decide_looks(workdir, design, fixed)
    needed, scheduled = next_stage(design, fixed, state)
    by_key = {(run.variant, run.seed): run for run in runs}
    plan.write_plan(workdir, config, [by_key[key] for key in scheduled])
    if needed:
        look = state["last_look"] + 1
        print(f"until decided: look {look + 1} of {len(design.looks)} at "
              f"{design.looks[look]} seeds for {', '.join(open_variants(fixed, state))} and "
              f"the baseline {fixed['baseline']}; {describe(state)}", flush=True)
    else:
        print(f"until decided: {describe(state)}", flush=True)
    return [by_key[key] for key in needed], [by_key[key] for key in scheduled]


def open_variants(fixed: dict, state: dict) -> list[str]:
    return [v for v in fixed["compared"] if not state["variants"].get(v, {}).get("final")]


def decide_looks(workdir: str, design: sequential.Design, fixed: dict) -> dict:
    """Makes every look whose runs have all finished and that was not made yet, in order,
    and returns the decisions (`decisions.json`, written under a lock: shards may look at
    once, and reach the same decisions). A changed design is refused after the first look."""
    path = os.path.join(workdir, "decisions.json")
    os.makedirs(workdir, exist_ok=True)
    with files.exclusive(os.path.join(workdir, ".decisions.lock")):
        state = run_dir.read_json(path) or {"last_look": -1}
        if state["last_look"] < 0:  # no look made: the design is this config's
            state = {**fixed, "last_look": -1, "variants": {}}
        else:
            changed = sorted(k for k in fixed if state.get(k) != fixed[k])
            if changed:
                raise ValueError(
                    f"{path} fixed this sweep's design at its first look, and this config "
                    f"changes its {', '.join(changed)}; restore them, or use another --workdir.")
        made = False
        while state["last_look"] + 1 < len(design.looks) and open_variants(fixed, state):
            look = state["last_look"] + 1
            records = _records(workdir, [fixed["baseline"], *open_variants(fixed, state)],
                               fixed["seeds"][:design.looks[look]])
            if records is None:
                break  # this look's runs have not all finished
            _look(design, fixed, state, look, records)
            made = True
        if made or not os.path.exists(path):
            files.write_json_atomically(path, state)
    return state


def _records(workdir: str, variants: list[str], seeds: list[int]) -> dict | None:
    """{variant: {seed: its done record}} of these variants' runs of these seeds, or None
    where one of them has not finished."""
    records = {}
    for variant in variants:
        records[variant] = {}
        for seed in seeds:
            final = run_dir.read_final(os.path.join(workdir, variant, f"seed{seed}"),
                                       warn=False)
            if not final or final.get("status") not in FINISHED:
                return None
            if final["status"] == "done":
                records[variant][seed] = final
    return records


def _look(design: sequential.Design, fixed: dict, state: dict, look: int, records: dict) -> None:
    """The decisions of one look for every open variant; a verdict reached is frozen."""
    n, last = design.looks[look], look == len(design.looks) - 1
    for variant in open_variants(fixed, state):
        v, b, paired = decide.errors_compared(records[variant], records[fixed["baseline"]],
                                              fixed["seeds"][:n])
        verdict = (str(decide.compare(v, b, paired, design.alpha_at(look),
                                      design.margin)["verdict"])
                   if min(len(v), len(b)) else "undecided")
        state["variants"][variant] = {"verdict": verdict, "look": look, "seeds": n,
                                      "final": verdict != "undecided" or last}
    state["last_look"] = look


def next_stage(design: sequential.Design, fixed: dict, state: dict) -> tuple[list, list]:
    """The (variant, seed) runs of the next look (none when all is decided or the last look
    made), and every run scheduled so far, that one included (the plan the tables show)."""
    look = state["last_look"] + 1
    open_ = open_variants(fixed, state)
    n_next = design.looks[look] if look < len(design.looks) and open_ else 0
    needed = [(v, seed) for v in [fixed["baseline"], *open_] for seed in fixed["seeds"][:n_next]]
    seeds = {v: n_next if v in open_ else state["variants"][v]["seeds"]
             for v in fixed["compared"]}
    seeds[fixed["baseline"]] = max(seeds.values())
    scheduled = [(v, seed) for v in [fixed["baseline"], *fixed["compared"]]
                 for seed in fixed["seeds"][:seeds[v]]]
    return needed, scheduled


def describe(state: dict) -> str:
    """The verdicts so far, e.g. "35x35_fig5: worse (look 2, 8 seeds)"."""
    said = [f"{v}: {d['verdict']} (look {d['look'] + 1}, {d['seeds']} seeds"
            + ("" if d["final"] else ", open") + ")" for v, d in state["variants"].items()]
    return "; ".join(said) or "no look made yet"
