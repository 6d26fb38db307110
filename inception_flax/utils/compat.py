"""Every old name and old form this project still accepts, with the date it became old: the one
place for them (docs mention them here only). Remove an entry when its date is far enough back.

| old | now | old since | kept by |
|---|---|---|---|
| hyphenated flags (`--image-size`, `--match-macs`) | `--image_size`, `--match_macs` | 2026-11-28 | `snake_case`, in `cli.parse` |
| `python -m inception_flax.report DIR` (positional directory) | `python -m inception_flax.results --workdir DIR` | 2026-11-28 | `inception_flax/report.py`; `REPORT_POSITIONAL` |
| `InceptionConfig.module_35="double_3x3"` | `"released_5x5_as_3x3"` (or `"fig5"`, the paper's figure 5) | 2026-11-28 | refused with the fix: `renamed_module_35` |
| preset `inception_v2_basic` = the released network with a 7×7 stem | table 1's network with a 7×7 (table 3's "Inception-v2 basic"); the old one is `inception_v3` with `stem="7x7", aux_head="plain"` | 2026-12-02 | said in `model/architecture.py` |
| a training config whose `model` lists every field (no `preset`) | `configs/inception.py`: a preset and overrides | 2026-12-02 | accepted as it is by `run.settings.resolve` (every run records that form) |
| a checkpoint fingerprint of 8 fields (model, dataset, image_size, global_batch_size, seed, preprocessing, optimizer, sync_batch_norm) | every field but the bookkeeping ones (`run.run_dir.identity`) | 2026-12-02 | `legacy_fingerprint`: only those fields are compared, the checkpoint resumes |
| `metrics.jsonl` records without `interval_steps`/`interval_s`/`timed`, and no `segment` records | with them | 2026-12-02 | `run.run_log`: the seconds of an interval follow from its images per second |

Standard library only.
"""

from __future__ import annotations

import json

REPORT_POSITIONAL = "workdir"  # the flag `python -m inception_flax.report DIR` sets


def snake_case(arg: str) -> str:
    """`--image-size=299` → `--image_size=299`: the hyphenated spelling (until 2026-11-28)."""
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + sep + value


def renamed_module_35(value) -> str | None:
    """The one-sentence fix for `module_35="double_3x3"` (renamed 2026-11-28), else None."""
    if value != "double_3x3":
        return None
    return ("InceptionConfig.module_35='double_3x3' was renamed: use 'released_5x5_as_3x3' for "
            "what it built (the released module with its 5×5 as two 3×3), or 'fig5' for the "
            "paper's figure 5.")


def legacy_fingerprint(meta: dict) -> dict:
    """A checkpoint's fingerprint written before 2026-12-02 (its 8 fields, `model` nested) in
    the form of `run_dir.identity`, marked `_legacy`: only its fields are compared."""
    flat = {f"model.{k}": v for k, v in (meta.get("model") or {}).items()}
    flat.update({k: v for k, v in meta.items() if k != "model"})
    return {**json.loads(json.dumps(flat)), "_legacy": True}
