"""Preparing a dataset, apart from training (training never prepares one): TFDS's builder
writes it into `data_dir` as TFRecords, `imagenet2012` from ILSVRC2012's own tar files
(`ILSVRC2012_img_train.tar`, one tar of JPEGs per synset, and `ILSVRC2012_img_val.tar`), with
TFDS's progress bars; the folder forms (an ImageFolder tree, TF-slim's TFRecords) need no
preparation and are checked instead.

The tar files are checked before anything is written: there, tar files, members named as
ILSVRC2012 names them. TFDS writes a dataset whole or not at all (into
`<name>/incomplete.*`, renamed when done), and its builder keeps no progress: an interrupted
preparation leaves `data_dir` as it was, and the same command starts it again, removing what a
killed one left. A finished one is not redone. One preparation at a time per dataset and
folder (a lock).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tarfile
import time

import ml_collections

from inception_flax.run import image_sources
from inception_flax.run.image_sources import DatasetDamaged, DatasetNotFound  # noqa: F401
from inception_flax.utils import files

ILSVRC_TARS = {"train": ("ILSVRC2012_img_train.tar", r"n\d{8}\.tar"),
               "validation": ("ILSVRC2012_img_val.tar", r"ILSVRC2012_val_\d{8}\.JPEG")}
VALIDATION_IMAGES = 50_000  # TFDS's validation_labels.txt: one synset per validation image


def default_data_dir() -> str:
    import tensorflow_datasets as tfds
    return os.path.expanduser(tfds.core.constants.DATA_DIR)


def _whole(f, start: int, size: int, last=None) -> bool:
    """Whether the `size` bytes at `start` of `f` look like a whole tar archive: a valid
    first header, and the two zero blocks that end every archive, after the last member's
    data where it is known (`last`: a copy cut at a member boundary has none there), else
    at its end."""
    if size < 1536:
        return False
    f.seek(start)
    try:
        tarfile.TarInfo.frombuf(f.read(512), "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    end = (last.offset_data + -(-last.size // 512) * 512) if last else start + size - 1024
    if end + 1024 > start + size:
        return False
    f.seek(end)
    return f.read(1024) == bytes(1024)


def check_ilsvrc_tars(manual_dir: str) -> dict[str, int]:
    """{split: members} of ILSVRC2012's two tar files in `manual_dir`, or one sentence
    (`DatasetNotFound`, `DatasetDamaged`) naming what is missing or wrong: not there, not a
    whole tar file (cut short, even at a member boundary), members not named as ILSVRC2012
    names them, a synset's tar inside the training one damaged. Reads headers and each
    archive's last block only (seeking past the images)."""
    if not os.path.isdir(manual_dir):
        raise DatasetNotFound(
            f"the manual folder {manual_dir} does not exist; put ILSVRC2012_img_train.tar and "
            "ILSVRC2012_img_val.tar (from image-net.org) there, or give their folder with "
            "--manual_dir.")
    counts = {}
    for split, (name, pattern) in ILSVRC_TARS.items():
        path = os.path.join(manual_dir, name)
        if not os.path.isfile(path):
            raise DatasetNotFound(f"{path} is missing; put ILSVRC2012's {name} (from "
                                  "image-net.org) in that folder, or give its folder with "
                                  "--manual_dir.")
        damaged = f"{path} is not a whole tar file ({{}}); download it again."
        try:
            with tarfile.open(path, "r:") as tar:
                members = list(tar)
            with open(path, "rb") as f:
                if not members or not _whole(f, 0, os.path.getsize(path), members[-1]):
                    raise DatasetDamaged(damaged.format("it ends without the blocks that end "
                                                        "a tar archive: cut short"))
                bad = next((m.name for m in members if split == "train"
                            and not _whole(f, m.offset_data, m.size)), None)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DatasetDamaged(damaged.format(error)) from None
        if bad:
            raise DatasetDamaged(f"{bad} inside {path} is not a whole tar file; download "
                                 f"{name} again.")
        names = [m.name for m in members]
        wrong = [n for n in names if not re.fullmatch(pattern, os.path.basename(n))]
        if wrong:
            raise DatasetDamaged(
                f"{path} holds {wrong[0]}, where ILSVRC2012's {name} holds only files named "
                f"like {pattern.replace(chr(92) + 'd{8}', 'NNNNNNNN')}".replace("\\.", ".")
                + "; give the file from image-net.org.")
        if split == "validation" and len(names) > VALIDATION_IMAGES:
            raise DatasetDamaged(f"{path} holds {len(names):,} images; ILSVRC2012's holds "
                                 f"{VALIDATION_IMAGES:,}, whose labels TFDS knows by name.")
        counts[split] = len(names)
    return counts


def prepare(dataset: str, data_dir: str | None, manual_dir: str | None = None,
            say=print) -> str:
    """Prepares `dataset` in `data_dir` (TFDS's default where None); returns what is there
    now in one line. A `DataError` or ValueError (one sentence) where it cannot be: nothing
    is left of what this call wrote (as after an interruption)."""
    if dataset in image_sources.STREAMED:
        return check_folder_form(dataset, data_dir)
    import tensorflow_datasets as tfds
    data_dir = os.path.expanduser(data_dir or default_data_dir())
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise ValueError(f"--data_dir {data_dir} is a file; give the folder the dataset goes "
                         "in (it is made where it does not exist).")
    image_sources.tf()  # TensorFlow kept off the accelerator
    builder = image_sources.quiet_builder(dataset, data_dir)
    with image_sources.quiet_tfds():
        prepared = builder.is_prepared()
    if prepared:
        return f"already prepared: {image_sources.TFDSSource(dataset, data_dir).describe(list(builder.info.splits))}"
    manual_dir = os.path.expanduser(manual_dir or os.path.join(data_dir, "downloads",
                                                               "manual"))
    if dataset in ("imagenet2012", "imagenet2012_subset"):
        counts = check_ilsvrc_tars(manual_dir)
    with written_or_removed(data_dir) as lock:
        try:
            fd = files.try_lock(lock)
        except files.Held as held:
            raise ValueError(f"another command (process {held}) is preparing in {data_dir}; "
                             "let it finish (or stop it) first.") from None
        try:
            if dataset in ("imagenet2012", "imagenet2012_subset"):
                say(f"ILSVRC2012's tar files in {manual_dir}: {counts['train']} synsets' "
                    f"tars, {counts['validation']:,} validation images")
            remove_leftovers(data_dir, dataset, say)
            say(f"preparing {dataset} in {builder.data_dir} with TFDS's builder (its progress "
                "bars follow; an interruption keeps nothing: run this command again)")
            began = time.time()
            tfds.display_progress_bar(True)
            with image_sources.quiet_tfds():  # TFDS warns of every split it does not find
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                    manual_dir=manual_dir))
            say(f"prepared in {time.time() - began:.1f} s")
        except (KeyboardInterrupt, image_sources.DataError, ValueError):
            raise
        except Exception as error:  # noqa: BLE001 (TFDS's many failures: one sentence)
            raise image_sources.DatasetNotFound(
                f"TFDS could not prepare {dataset} in {data_dir} ({type(error).__name__}: "
                f"{image_sources.one_line(error)[:300]}); for a dataset TFDS downloads, this "
                "machine needs its internet access, for ImageNet the tar files") from None
        finally:
            os.close(fd)
    return f"prepared: {image_sources.TFDSSource(dataset, data_dir).describe(list(builder.info.splits))}"


@contextlib.contextmanager
def written_or_removed(data_dir: str):
    """Yields the path of the preparation's lock file in `data_dir`; everything this block
    adds to `data_dir` (its top level, and `downloads/`) is removed where it fails or is
    interrupted, and the lock file always."""
    made = not os.path.exists(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    before = set(os.listdir(data_dir))
    downloads = os.path.join(data_dir, "downloads")
    before_downloads = set(os.listdir(downloads)) if os.path.isdir(downloads) else None
    lock = os.path.join(data_dir, ".prepare.lock")
    try:
        yield lock
    except BaseException:
        if before_downloads is not None and os.path.isdir(downloads):
            for name in set(os.listdir(downloads)) - before_downloads:
                _remove(os.path.join(downloads, name))
        for name in set(os.listdir(data_dir)) - before:
            _remove(os.path.join(data_dir, name))
        if made and not os.listdir(data_dir):
            os.rmdir(data_dir)
        raise
    finally:
        if os.path.exists(lock):
            os.remove(lock)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def remove_leftovers(data_dir: str, dataset: str, say=print) -> None:
    """Removes the `incomplete.*` folders a killed preparation of `dataset` left (TFDS
    removes its own when interrupted otherwise)."""
    for path in glob.glob(os.path.join(glob.escape(data_dir), dataset, "incomplete.*")):
        shutil.rmtree(path, ignore_errors=True)
        say(f"removed {path}, left by an interrupted preparation")


def check_folder_form(dataset: str, data_dir: str | None) -> str:
    """A folder form's check (what training checks first): what it holds, in one line."""
    config = ml_collections.ConfigDict(dict(dataset=dataset, data_dir=data_dir,
                                            train_split="train", eval_split="validation"))
    source = image_sources.open_source(config)
    source.check("train", "validation", 1)  # an empty split
    return (f"nothing to prepare ({dataset} is read in place): "
            f"{source.describe(['train', 'validation'])}")
