"""One training run: its settings, data, steps, loop and what it leaves behind.

`settings` (a training config checked at the boundary, the one conversion of its model fields),
`input_pipeline` (TFDS and in-memory data, deterministic and resumable), `optim` (schedules,
the optimizer, label smoothing, the weight average), `flat` (parameters packed for the update),
`steps` (the train and eval steps as module-level functions, and their compiled programs),
`train` (set-up, the loop, the finish; seeds trained together), `checkpoint` (orbax, refused
for another run, damaged ones set aside), `run_log` (progress, metrics, TensorBoard,
`final.json`), `run_dir` (what a run directory holds, and "the same run"), `run_lock` (one live
command per run directory).

May import: `inception_flax.model` and `inception_flax.utils`. Nothing of `sweeps`.
"""
