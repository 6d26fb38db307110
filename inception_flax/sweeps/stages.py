"""A sweep run until decided (`sweep.until_decided`): its looks, its decisions and the runs of
its next stage (the design and its error: `sequential`).

    config.sweep.until_decided = True
    config.sweep.min_seeds, config.sweep.max_seeds, config.sweep.seeds_per_stage = 4, 24, 4
    config.sweep.margin = 1.0             # points of top-1 error; 0: no equivalence verdicts
    config.sweep.alpha = 0.05             # family-wise, over the variants and the looks
    config.sweep.seeds = tuple(range(24))  # the seeds, in the order they are used

Every invocation first makes again, from the records, the decisions of every look whose runs
have all finished under this config, checks them against their log `DIR/decisions.json` and
adds the new ones to it (`decisions.settle`), then trains the runs of the next
look: the undecided variants' and the baseline's next seeds. Done alone, one command runs stage
after stage until every variant is decided or the last look is made. As one shard of several
(`--shard`, a Slurm array) it runs its part of one stage and exits: a shard that finds a stage
unfinished decides nothing, and the next invocation (e.g. the same array again, submitted with
`--dependency=afterok:<job>`) makes the look and starts the next stage. With `--workers`, the
command that starts the workers decides between stages. Decisions are a function of the
records, so a sweep killed anywhere and started again reaches the same decisions with the same
seeds. The design (α, margin, looks, seeds, baseline, variants) is recorded with the first
look and a changed one is refused after it, naming what changed. Runs set aside as stale
(`--set_aside_stale`) take the decisions made from them along: the looks start again.
"""

from __future__ import annotations

import os

from inception_flax.run import run_dir
from inception_flax.sweeps import decisions, execute, plan, sequential, workers
from inception_flax.sweeps.decisions import FINISHED


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
    sequential.looks(s.min_seeds, s.max_seeds, s.seeds_per_stage)  # a ValueError if not valid
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
    if not [v for v in variants if v != baseline]:
        raise ValueError("sweep.until_decided needs a variant besides the baseline.")
    return decisions.design_from(dict(s.to_dict(), baseline=baseline), variants)


def run(config, workdir: str, runs: list, shard: str | None, train_fn, stale: dict,
        retry_diverged: bool, rebuild: bool = False) -> int:
    """Stage after stage (one stage as a shard), as the module docstring says; returns how
    many runs failed or diverged. `rebuild`: `decisions.settle`'s."""
    one_stage = shard is not None or workers.slurm_shard() is not None
    bad = 0
    while True:
        needed, scheduled = next_units(config, workdir, runs, rebuild)
        rebuild = retry_diverged  # a diverged run retrained changes the looks it was in
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


def next_units(config, workdir: str, runs: list, rebuild: bool = False) -> tuple[list, list]:
    """Makes the looks the finished runs allow (`decisions.settle`: from the records, checked
    against the log), writes the plan of every run scheduled so far (`sweep.json`) and says
    what comes next; returns the runs of the next stage (none once every variant is decided
    or the last look made) and the scheduled ones. The command that starts `--workers` calls
    it between stages."""
    design, fixed = design_of(config, runs)
    identities = {(run.variant, run.seed): run_dir.digest(run.config) for run in runs}
    state = decisions.settle(workdir, design, fixed, identities, rebuild)
    needed, scheduled = next_stage(design, fixed, state)
    by_key = {(run.variant, run.seed): run for run in runs}
    plan.write_plan(workdir, config, [by_key[key] for key in scheduled])
    if needed:
        look = state["last_look"] + 1
        print(f"until decided: look {look + 1} of {len(design.looks)} at "
              f"{design.looks[look]} seeds for "
              f"{', '.join(decisions.open_variants(fixed, state))} and the baseline "
              f"{fixed['baseline']}; {describe(state)}", flush=True)
    else:
        print(f"until decided: {describe(state)}", flush=True)
    return [by_key[key] for key in needed], [by_key[key] for key in scheduled]


def set_aside_stale_decisions(workdir: str, stale: dict) -> None:
    """With runs set aside as stale (`--set_aside_stale`), the decisions made from them go
    too: a log whose looks used one of them is moved aside, and the looks start again from
    the records (where the stale runs count as not run)."""
    if not stale:
        return
    try:
        log = decisions.read_log(os.path.join(workdir, decisions.NAME))
    except decisions.Mismatch:
        log = None  # damaged: settle refuses it, or rebuilds it
    if not log or log["last_look"] < 0:
        return
    seeds = log["seeds"][:log["design"]["looks"][log["last_look"]]]
    used = {f"{v}/seed{seed}" for v in [log["baseline"], *log["compared"]] for seed in seeds}
    if used & set(stale):
        moved = decisions.set_aside(workdir)
        print(f"the decisions made from stale runs set aside as {moved}; the looks start "
              "again from the first", flush=True)


def next_stage(design: sequential.Design, fixed: dict, state: dict) -> tuple[list, list]:
    """The (variant, seed) runs of the next look (none when all is decided or the last look
    made), and every run scheduled so far, that one included (the plan the tables show)."""
    look = state["last_look"] + 1
    open_ = decisions.open_variants(fixed, state)
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
