"""Preparing a dataset for training, apart from it (training never prepares one): the command
line of `inception_flax.run.preparation`.

    python -m inception_flax.prepare --dataset=imagenet2012 --data_dir=/data/tfds \\
        [--manual_dir=/data/ilsvrc2012]

prepares TFDS's `imagenet2012` from ILSVRC2012's `ILSVRC2012_img_train.tar` and
`ILSVRC2012_img_val.tar` (in `--manual_dir`, default `<data_dir>/downloads/manual`); any other
TFDS name is downloaded and prepared where it can be. `--dataset=image_folder` or
`slim_tfrecords` checks a folder form as training would and says what it holds (nothing to
prepare). Exit codes: 0 prepared (or already), 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from inception_flax.run.preparation import check_ilsvrc_tars, prepare
from inception_flax.utils import cli

__all__ = ["check_ilsvrc_tars", "prepare", "main"]


def _define(values) -> None:
    flags.DEFINE_string("dataset", "imagenet2012", "A TFDS name (imagenet2012: from "
                        "ILSVRC2012's tar files), or image_folder / slim_tfrecords to check "
                        "a folder form.", flag_values=values)
    flags.DEFINE_string("data_dir", None, "Where the dataset goes (TFDS's data_dir, default "
                        "~/tensorflow_datasets), or the folder form's folder; the training "
                        "config's --config.data_dir.", flag_values=values)
    flags.DEFINE_string("manual_dir", None, "The folder of ILSVRC2012_img_train.tar and "
                        "ILSVRC2012_img_val.tar (default <data_dir>/downloads/manual).",
                        flag_values=values)


def main(argv=None) -> int:
    values = cli.parse(argv, "python -m inception_flax.prepare",
                       "Prepares a dataset for training, apart from it: TFDS's imagenet2012 "
                       "from ILSVRC2012's own tar files (after an interruption, the same command "
                       "starts it again; a finished one is kept), or checks an ImageFolder tree or TF-slim "
                       "TFRecords (read in place).", _define)
    if isinstance(values, int):
        return values
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        print(prepare(values.dataset, values.data_dir, values.manual_dir), flush=True)
    except KeyboardInterrupt:
        print("interrupted: nothing was kept (TFDS writes a dataset whole or not at all); run "
              "the same command again to prepare it.", file=sys.stderr)
        return 130
    except ValueError as error:
        print(f"error: {in_these_flags(str(error))}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    return 0


def in_these_flags(message: str) -> str:
    """A data check's sentence (written for the training command's config flags) in this
    command's flags."""
    for config_flag, flag in (("--config.data_dir", "--data_dir"),
                              ("--config.dataset", "--dataset"),
                              ("config.data_dir", "--data_dir"), ("config.dataset", "--dataset")):
        message = message.replace(config_flag, flag)
    return message


if __name__ == "__main__":
    sys.exit(main())
