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

import glob
import os
import re
import shutil
import tarfile
import time

import ml_collections

from inception_flax.run import image_sources
from inception_flax.run.image_sources import DatasetDamaged, DatasetNotFound
from inception_flax.utils import files

ILSVRC_TARS = {"train": ("ILSVRC2012_img_train.tar", r"n\d{8}\.tar"),
               "validation": ("ILSVRC2012_img_val.tar", r"ILSVRC2012_val_\d{8}\.JPEG")}
VALIDATION_IMAGES = 50_000  # TFDS's validation_labels.txt: one synset per validation image


def default_data_dir() -> str:
    import tensorflow_datasets as tfds
    return os.path.expanduser(tfds.core.constants.DATA_DIR)


def check_ilsvrc_tars(manual_dir: str) -> dict[str, int]:
    """{split: members} of ILSVRC2012's two tar files in `manual_dir`, or one sentence
    (`DatasetNotFound`, `DatasetDamaged`) naming what is missing or wrong. Reads the tar
    headers only (seeking past the images)."""
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
        try:
            with tarfile.open(path, "r:") as tar:
                names = [member.name for member in tar]
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DatasetDamaged(f"{path} is not a whole tar file ({error}); download it "
                                 "again.") from None
        wrong = [n for n in names if not re.fullmatch(pattern, os.path.basename(n))]
        if wrong or not names:
            raise DatasetDamaged(
                f"{path} holds {wrong[0] if wrong else 'nothing'}, where ILSVRC2012's {name} "
                f"holds only files named like {pattern.replace(chr(92) + 'd{8}', 'NNNNNNNN')}"
                .replace("\\.", ".") + "; give the file from image-net.org.")
        if split == "validation" and len(names) > VALIDATION_IMAGES:
            raise DatasetDamaged(f"{path} holds {len(names):,} images; ILSVRC2012's holds "
                                 f"{VALIDATION_IMAGES:,}, whose labels TFDS knows by name.")
        counts[split] = len(names)
    return counts


def prepare(dataset: str, data_dir: str | None, manual_dir: str | None = None,
            say=print) -> str:
    """Prepares `dataset` in `data_dir` (TFDS's default where None); returns what is there
    now in one line. A `DataError` (one sentence, nothing written) where it cannot be."""
    if dataset in image_sources.STREAMED:
        return check_folder_form(dataset, data_dir)
    import tensorflow_datasets as tfds
    data_dir = data_dir or default_data_dir()
    image_sources.tf()  # TensorFlow kept off the accelerator
    builder = image_sources.quiet_builder(dataset, data_dir)
    with image_sources.quiet_tfds():
        prepared = builder.is_prepared()
    if prepared:
        return f"already prepared: {image_sources.TFDSSource(dataset, data_dir).describe(list(builder.info.splits))}"
    manual_dir = manual_dir or os.path.join(data_dir, "downloads", "manual")
    if dataset == "imagenet2012":
        counts = check_ilsvrc_tars(manual_dir)
        say(f"ILSVRC2012's tar files in {manual_dir}: {counts['train']} synsets' tars, "
            f"{counts['validation']:,} validation images")
    os.makedirs(data_dir, exist_ok=True)
    try:
        lock = files.try_lock(os.path.join(data_dir, f".{dataset}.prepare.lock"))
    except files.Held as held:
        raise ValueError(f"another command (process {held}) is preparing {dataset} in "
                         f"{data_dir}; let it finish (or stop it) first.") from None
    try:
        remove_leftovers(data_dir, dataset, say)
        say(f"preparing {dataset} in {builder.data_dir} with TFDS's builder (its progress "
            "bars follow; an interruption keeps nothing: run this command again)")
        began = time.time()
        tfds.display_progress_bar(True)
        try:
            with image_sources.quiet_tfds():  # TFDS warns of every split it does not find
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                    manual_dir=manual_dir))
        except (tarfile.TarError, EOFError) as error:
            raise DatasetDamaged(f"a tar file in {manual_dir} is damaged ({error}); download "
                                 "it again.") from None
        say(f"prepared in {time.time() - began:.1f} s")
    finally:
        os.close(lock)
    return f"prepared: {image_sources.TFDSSource(dataset, data_dir).describe(list(builder.info.splits))}"


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
    return (f"nothing to prepare ({dataset} is read in place): "
            f"{source.describe(['train', 'validation'])}")
