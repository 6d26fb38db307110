"""What a run directory holds, read back: its record (`final.json`), its metrics
(`metrics.jsonl`), and whether it belongs to a config.

**The same run.** A run directory belongs to a config when the config's *identity* equals the
one the directory stored (its `final.json`'s config, else its newest checkpoint's fingerprint).
The identity is every field of the training config except `BOOKKEEPING`: how often a run logs,
evaluates and checkpoints, how many checkpoints it keeps, whether it writes TensorBoard events
or uses the compilation cache, where it reads its data from and with how many threads, the
batch it evaluates in, and whether it evaluates the raw weights beside their average. None of
these changes what the run computes or what its table reports; every other field does (the
learning rate, the epochs, the seed, the model's fields and its lowering, the evaluation size
`max_eval_examples`...). The rule is the same for a finished run, a resumed run and every run
of a sweep: a directory whose identity differs is refused, naming the fields, or with
`--set_aside_stale` moved aside as `<dir>.stale-<date>` and trained again. Never counted,
never resumed.

Standard library only: the tables (`results`) read records without importing JAX.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

# Fields that do not change what a run computes or reports (see the module docstring).
BOOKKEEPING = ("log_every_steps", "eval_every_steps", "checkpoint_every_steps",
               "keep_checkpoints", "tensorboard", "compilation_cache", "data_dir",
               "data_threads", "eval_batch_size", "eval_raw_weights")


def identity(config) -> dict:
    """The fields of a training config (a ConfigDict or its `to_dict()`) that make a run this
    run, flattened to dotted names ("model.module_35") with JSON's values (tuples as lists)."""
    fields = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    flat = {}

    def walk(prefix, node):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            elif f"{prefix}{key}" not in BOOKKEEPING:
                flat[f"{prefix}{key}"] = value
    walk("", {k: v for k, v in fields.items() if k != "sweep"})
    return json.loads(json.dumps(flat, sort_keys=True, default=repr))


def digest(config) -> str:
    """A short hash of `identity(config)`: equal for the same run, different otherwise."""
    text = json.dumps(identity(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differing(stored: dict, config) -> list[str]:
    """The names of the fields in which a stored identity differs from `config`'s (a field
    one of them lacks differs too). A checkpoint written before 2026-12-02 stored only some
    fields (marked `_legacy`, `checkpoint.legacy_fields`): those are compared."""
    wanted = identity(config)
    if stored.get("_legacy"):
        stored = {k: v for k, v in stored.items() if k != "_legacy"}
        wanted = {k: v for k, v in wanted.items() if k in stored}
    return sorted(k for k in set(stored) | set(wanted)
                  if stored.get(k, "<absent>") != wanted.get(k, "<absent>"))


# ---------------------------------------------------------------------------------------------
# Records.

def read_json(path: str) -> dict | None:
    """A JSON object from `path`; None where the file is missing. A file that is not a JSON
    object (truncated, `null`, a list) raises `Damaged` naming it."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise Damaged(path, f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise Damaged(path, f"holds {type(data).__name__}, not a record")
    return data


class Damaged(ValueError):
    """A record that cannot be read: the run counts as unfinished."""

    def __init__(self, path: str, why: str):
        super().__init__(f"{path} is damaged ({why})")
        self.path = path


def read_final(run_dir: str, warn: bool = True) -> dict | None:
    """The run's `final.json`, or None where there is none or it is damaged (then, with
    `warn`, one line on stderr says so: the run counts as unfinished)."""
    try:
        return read_json(os.path.join(run_dir, "final.json"))
    except Damaged as damaged:
        if warn:
            print(f"warning: {damaged}; the run counts as unfinished (it resumes, or is "
                  "evaluated again, from its checkpoints).", file=sys.stderr, flush=True)
        return None


def set_aside_damaged_final(run_dir: str) -> None:
    """Renames a damaged `final.json` to `final.json.damaged` (one line on stderr says so), so
    that the run's next record replaces it and the damaged one stays for a person to read."""
    path = os.path.join(run_dir, "final.json")
    try:
        read_json(path)
    except Damaged as damaged:
        os.replace(path, path + ".damaged")
        print(f"warning: {damaged}; set aside as final.json.damaged: the run counts as "
              "unfinished, and resumes or is evaluated again from its checkpoints.",
              file=sys.stderr, flush=True)


def read_metrics(run_dir: str) -> list[dict]:
    """The records of `metrics.jsonl`, in order; a line that is not a JSON object (a line cut
    short by a kill) is left out."""
    path = os.path.join(run_dir, "metrics.jsonl")
    records = []
    if not os.path.exists(path):
        return records
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "step" in record:
                records.append(record)
    return records


# ---------------------------------------------------------------------------------------------
# Whether a directory belongs to a config.

def stored_identity(run_dir: str, checkpoint_fields=None) -> dict | None:
    """The identity a run directory stored: its record's config, else what
    `checkpoint_fields(run_dir)` returns (the newest checkpoint's), else None (a new run)."""
    final = read_final(run_dir, warn=False)
    if final and isinstance(final.get("config"), dict):
        return identity(final["config"])
    return checkpoint_fields(run_dir) if checkpoint_fields else None


def stale_fields(run_dir: str, config, checkpoint_fields=None) -> list[str]:
    """The fields in which `run_dir`'s stored identity differs from `config`'s ([] where it
    belongs to `config` or holds nothing yet)."""
    stored = stored_identity(run_dir, checkpoint_fields)
    return [] if stored is None else differing(stored, config)


def describe_stale(name: str, fields: list[str]) -> str:
    shown = ", ".join(fields[:6]) + (f" and {len(fields) - 6} more" if len(fields) > 6 else "")
    return f"{name} was made under another config (it differs in {shown})"


def set_aside(run_dir: str, why: str = "stale") -> str:
    """Moves a run directory aside as `<dir>.<why>-<date>` (a number appended where that
    exists); returns the new path. A lock its caller holds on it moves with it."""
    base = f"{run_dir.rstrip(os.sep)}.{why}-{time.strftime('%Y-%m-%d')}"
    target, suffix = base, 1
    while os.path.exists(target):
        suffix += 1
        target = f"{base}-{suffix}"
    os.rename(run_dir, target)
    return target


# ---------------------------------------------------------------------------------------------
# Which evaluation examples a run got right.

def encode_correct(index, right) -> dict:
    """`final.json`'s compact record of which evaluation examples the top-1 prediction got
    right: {"n": examples by index 0..n-1, "evaluated": how many were, "right": base64 of
    the packed bits (1: right) in index order, "seen": the same for the examples evaluated,
    where not all were}. `index`: each result's example index (< 0: padding)."""
    import base64

    import numpy as np
    index, right = np.asarray(index), np.asarray(right, bool)
    keep = index >= 0
    n = int(index[keep].max()) + 1 if keep.any() else 0
    bits, seen = np.zeros(n, bool), np.zeros(n, bool)
    bits[index[keep]], seen[index[keep]] = right[keep], True
    pack = lambda b: base64.b64encode(np.packbits(b).tobytes()).decode()  # noqa: E731
    record = {"n": n, "evaluated": int(seen.sum()), "right": pack(bits)}
    if not seen.all():
        record["seen"] = pack(seen)
    return record


def decode_correct(record: dict):
    """(right, seen): boolean arrays over the examples 0..n-1 of an `encode_correct` record."""
    import base64

    import numpy as np

    def unpack(text):
        return np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8))[:record["n"]] \
            .astype(bool)
    right = unpack(record["right"])
    seen = unpack(record["seen"]) if "seen" in record else np.ones(record["n"], bool)
    return right, seen
