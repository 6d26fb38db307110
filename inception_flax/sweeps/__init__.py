"""Sweeps: variants × seeds, run and judged.

`plan` (variants from a config, fixed cost, seeds, shards, the dry run, `sweep.json`),
`execute` (a sweep's units of work in this process: finished, failed, stale runs, locks),
`workers` (a sweep in one process per share of the CPU's cores; standard library only, it runs
before JAX starts), `command` (what `run_experiment.py` does with its flags), `decide` (the
verdicts), `sequential` (seeds added until decided: the design and its simulation), `stages`
(its looks and decisions), `tables` and `plots` (the results).

May import: `inception_flax.run`, `inception_flax.model` and `inception_flax.utils`.
"""
