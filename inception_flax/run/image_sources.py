"""Where a streamed dataset's images come from, in the three forms labs hold ImageNet in, each
read in place by tf.data with TensorFlow's own decoders (no copy of the data):

- a **TFDS** dataset prepared in `data_dir` (`imagenet2012`, prepared from ILSVRC2012's tar
  files by `python -m inception_flax.prepare`, or any TFDS image-classification dataset);
- an **ImageFolder** tree (`config.dataset = "image_folder"`): `<data_dir>/train/<class>/*`
  and `<data_dir>/val/<class>/*` (or `validation/`), classes the sorted folder names of the
  training split;
- **TF-slim's TFRecords** (`config.dataset = "slim_tfrecords"`), as TF-slim's and the TPU
  reference's `build_imagenet_data.py` write them: `<data_dir>/train-00000-of-01024`, ...,
  `validation-00000-of-00128`, ..., with its feature keys (`image/encoded`,
  `image/class/label`, `image/filename`). Its labels are 1-based (0 is TF-slim's background
  class, which ImageNet's records never use); they are read as label − 1, so the network has
  no background output (as Keras's and this project's released network: 1,000 classes, where
  TF-slim's checkpoints have 1,001).

Each form's facts come from its own metadata: the classes (TFDS's `ClassLabel`; the folders;
TF-slim: the largest label of the validation split, one pass over its labels, since its
records hold no class count), the examples of each split (TFDS's metadata; the files; the
records counted from the TFRecord framing, without reading their contents) and its files.
`open_source` finds every fault of the data before the first step, as a `DataError` of one
sentence: a missing `data_dir`, a form not recognised (the three named), a split, shard or
file missing, a shard cut short, a class folder without images, and what needs the config's
batch (`Source.check`): fewer examples than one global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import glob
import os
import re

import numpy as np

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".gif")  # what tf.io.decode_image reads
STREAMED = ("image_folder", "slim_tfrecords")  # the two forms named by config.dataset
FORMS = ("a TFDS dataset prepared there (<name>/<version>/dataset_info.json; "
         "`python -m inception_flax.prepare` makes one)",
         "an ImageFolder tree (train/<class>/*.JPEG and val/<class>/*.JPEG; "
         "--config.dataset=image_folder)",
         "TF-slim's TFRecords (train-00000-of-01024, ..., validation-00000-of-00128, ...; "
         "--config.dataset=slim_tfrecords)")
# The layout's own name of a split asked for by another common name.
ALIASES = {"validation": "val", "val": "validation"}
PREPARE = "python -m inception_flax.prepare"


class DataError(ValueError):
    """The data a config names cannot be read: bad input, said in one sentence."""


class DatasetNotFound(DataError):
    pass


class DatasetDamaged(DataError):
    pass


class DatasetTooSmall(DataError):
    pass


def tf():
    import tensorflow
    tensorflow.config.set_visible_devices([], "GPU")  # the accelerator is JAX's
    return tensorflow


@contextlib.contextmanager
def quiet_stderr():
    """File descriptor 2 to /dev/null for the block: libjpeg writes its warnings there
    directly ("Improper call to JPEG library"), where the one sentence that names the image
    is what counts."""
    import sys
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def one_line(error: Exception) -> str:
    """A TensorFlow error's message as one line (without its graph-node notes)."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\s*\[\[.*?\]\]|\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", text,
                  flags=re.DOTALL)
    return " ".join(text.split()).rstrip(".")


# ---------------------------------------------------------------------------------------------
# What every form gives the input pipeline.

@dataclasses.dataclass
class Part:
    """This process's part of a split: `count` examples, read by `read(epoch)` as a tf.data
    dataset of {"encoded" (bytes, or an image already decoded), "label" (0-based int32),
    "name" (where the example is, for messages)} in the epoch's order (`epoch` None: the
    stored order, for evaluation). `shuffled`: the order is already a permutation of the
    whole split (no shuffle buffer is needed); `offset`: the split position of the part's
    first example in stored order."""

    count: int
    read: object
    shuffled: bool = False
    offset: int = 0


class Source:
    """A dataset in one of the three forms (see the module's docstring)."""

    form: str
    where: str  # for messages: the form and its folder
    num_classes: int
    repair = "replace it with an intact copy"  # what to do about an example that cannot be read
    label_base, label_rule = 0, "its labels 0-based"  # how its labels are stored

    def part(self, split: str, processes: int, index: int, seed: int = 0,
             global_batch: int = 0) -> Part:
        raise NotImplementedError

    def examples(self, split: str) -> int:
        raise NotImplementedError

    def describe(self, splits) -> str:
        sizes = ", ".join(f"{self.examples(s):,} {s}" for s in splits)
        return f"{self.where}: {self.num_classes} classes, {sizes} examples"

    def check(self, train_split: str, eval_split: str, global_batch: int,
              processes: int = 1) -> int:
        """Steps per epoch at `global_batch`, or `DatasetTooSmall` where the training split
        has less than one global batch (on every process) or the evaluation split is empty."""
        local = global_batch // processes
        steps = min(self.part(train_split, processes, i, 0, global_batch).count // local
                    for i in range(processes))
        if steps < 1:
            have = self.examples(train_split)
            raise DatasetTooSmall(
                f"the {train_split} split of {self.where} has {have} examples, fewer than one "
                f"global batch of {global_batch}" + (f" ({local} on each of {processes} "
                                                     "processes)" if processes > 1 else "")
                + f"; set --config.global_batch_size={max(processes, have // processes * processes)}"
                " or less, or give it more data.")
        if self.examples(eval_split) < 1:
            raise DatasetTooSmall(f"the {eval_split} split of {self.where} is empty; give it "
                                  "examples, or set --config.eval_split to another split.")
        return steps


def _require_dir(data_dir: str | None, dataset: str) -> str:
    if not data_dir:
        raise DatasetNotFound(f"config.dataset={dataset!r} is read from a folder, and "
                              "config.data_dir is not set; set --config.data_dir=/path/to/it.")
    data_dir = os.path.expanduser(data_dir)
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DatasetNotFound(f"config.data_dir={data_dir} is a file, not a folder; set "
                              "--config.data_dir to the folder that holds the data.")
    if not os.path.isdir(data_dir):
        raise DatasetNotFound(f"config.data_dir={data_dir} does not exist; set "
                              "--config.data_dir to the folder that holds the data.")
    return data_dir


def detect(data_dir: str) -> str | None:
    """Which form `data_dir` holds: "slim_tfrecords", "image_folder", "tfds:<name>" (a TFDS
    data dir with a prepared dataset), "tfds_dataset:<name>" (a TFDS dataset's own folder, one
    level too deep), or None."""
    if any(SLIM_NAME.match(name) for name in _names(data_dir)):
        return "slim_tfrecords"
    if os.path.isdir(os.path.join(data_dir, "train")):
        return "image_folder"
    prepared = sorted(glob.glob(os.path.join(glob.escape(data_dir), "*", "*",
                                             "dataset_info.json")))
    if prepared:
        return "tfds:" + os.path.basename(os.path.dirname(os.path.dirname(prepared[0])))
    if glob.glob(os.path.join(glob.escape(data_dir), "*", "dataset_info.json")):
        return "tfds_dataset:" + os.path.basename(os.path.abspath(data_dir))
    return None


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def not_recognised(data_dir: str, looked_for: str) -> DatasetNotFound:
    """The error for a `data_dir` without `looked_for`: it names the form it does hold, or the
    three this reads."""
    found = detect(data_dir)
    if found and found.startswith("tfds_dataset:"):
        return DatasetNotFound(
            f"{data_dir} is the folder of TFDS's {found.partition(':')[2]} itself, one level "
            f"too deep; set --config.data_dir={os.path.dirname(os.path.abspath(data_dir))} "
            f"and --config.dataset={found.partition(':')[2]}.")
    if found and found.startswith("tfds:"):
        return DatasetNotFound(f"{data_dir} holds no {looked_for} but a prepared TFDS "
                               f"{found.partition(':')[2]}; set "
                               f"--config.dataset={found.partition(':')[2]}.")
    if found:
        return DatasetNotFound(f"{data_dir} holds no {looked_for} but looks like "
                               f"{'TF-slim TFRecords' if found == 'slim_tfrecords' else 'an ImageFolder tree'}; "
                               f"set --config.dataset={found}.")
    return DatasetNotFound(f"{data_dir} holds no {looked_for}, nor any form this reads: "
                           f"{'; '.join(FORMS)}.")


# ---------------------------------------------------------------------------------------------
# TFDS.

def tfds_builder(name: str, data_dir: str | None):
    """TFDS's builder for `name` in `data_dir`, prepared: never downloads or prepares (that is
    `python -m inception_flax.prepare`'s work); a `DatasetNotFound` otherwise."""
    tf()  # TensorFlow, imported by TFDS, kept off the accelerator
    import tensorflow_datasets as tfds
    if data_dir is not None:
        data_dir = _require_dir(data_dir, name)
    builder = quiet_builder(name, data_dir)
    with quiet_tfds():
        prepared = builder.is_prepared()
    if not prepared:
        where = builder.data_dir_root if hasattr(builder, "data_dir_root") else data_dir
        found = detect(data_dir) if data_dir else None
        if found and found != f"tfds:{name}":
            raise not_recognised(data_dir, f"prepared TFDS {name}")
        manual = (" (ImageNet from ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in "
                  f"{os.path.join(str(where), 'downloads', 'manual')} or --manual_dir)"
                  if name.startswith("imagenet") else "")
        raise DatasetNotFound(
            f"TFDS dataset {name!r} is not prepared in {where}; prepare it first with "
            f"`{PREPARE} --dataset={name} --data_dir={where}`{manual}, then train.")
    return builder


@contextlib.contextmanager
def quiet_tfds():
    """TFDS without its warning that an unprepared folder has no metadata (the caller says
    what to do instead)."""
    from absl import logging
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def quiet_builder(name: str, data_dir: str | None):
    """`tfds.builder`, quiet (`quiet_tfds`), with one sentence for a name TFDS does not know."""
    import tensorflow_datasets as tfds
    with quiet_tfds():
        try:
            return tfds.builder(name, data_dir=data_dir)
        except Exception:  # noqa: BLE001 (TFDS's message lists every dataset it has)
            raise unknown_tfds(name) from None


def unknown_tfds(name: str) -> DatasetNotFound:
    """The error for a name TFDS does not know: one sentence, with the closest names."""
    import tensorflow_datasets as tfds
    names = tfds.list_builders()
    close = [n for n in names if n.startswith(name)][:3] or difflib.get_close_matches(
        name, names, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return DatasetNotFound(
        f"config.dataset={name!r} is no TFDS dataset{hint}; config.dataset names a TFDS "
        f"dataset, {' or '.join(map(repr, STREAMED))} (ImageNet's two folder forms), or "
        "'fashion_mnist_debian'.")


def _split_base(split: str) -> str:
    return re.match(r"[\w-]+", split).group(0) if re.match(r"[\w-]+", split) else split


@functools.lru_cache(maxsize=4096)
def _tfds_records(path: str) -> int:
    return count_records(path)


class TFDSSource(Source):
    form = "tfds"
    repair = (f"replace it in the tar files with an intact copy and prepare the dataset again "
              f"(`{PREPARE}`)")

    def __init__(self, name: str, data_dir: str | None):
        self.builder = tfds_builder(name, data_dir)
        info = self.builder.info
        self.where = f"TFDS {name} in {self.builder.data_dir}"
        if "image" not in info.features or "label" not in info.features:
            raise DatasetNotFound(f"{self.where} has no 'image' and 'label' features (it has "
                                  f"{', '.join(info.features)}); train on an image "
                                  "classification dataset.")
        self.num_classes = info.features["label"].num_classes
        self.has_file_name = "file_name" in info.features

    def _split_info(self, split: str):
        base = _split_base(split)
        splits = self.builder.info.splits
        if base not in splits:
            raise DatasetNotFound(f"{self.where} has no split {base!r} (it has "
                                  f"{', '.join(splits)}); set --config.train_split or "
                                  "--config.eval_split to one of them.")
        missing = [str(p) for p in splits[base].filepaths if not os.path.exists(str(p))]
        if missing:
            raise DatasetDamaged(f"{self.where}: {len(missing)} of the {base} split's "
                                 f"{len(splits[base].filepaths)} shard(s) are missing, e.g. "
                                 f"{missing[0]}; restore them or prepare the dataset again "
                                 f"(`{PREPARE}`).")
        for path, length in zip(splits[base].filepaths, splits[base].shard_lengths):
            if _tfds_records(str(path)) != length:  # the framing, read once per process
                raise DatasetDamaged(f"{path} holds {_tfds_records(str(path))} records where "
                                     f"TFDS's metadata lists {length}; restore it or prepare "
                                     f"the dataset again (`{PREPARE}`).")
        return splits[split]

    def examples(self, split: str) -> int:
        return self._split_info(split).num_examples

    def part(self, split, processes, index, seed=0, global_batch=0) -> Part:
        import tensorflow_datasets as tfds
        self._split_info(split)
        # As `tfds.split_for_jax_process`: equal parts for training, all of it for evaluation.
        subs = (tfds.even_splits(split, processes, drop_remainder=bool(global_batch))
                if processes > 1 else [split])
        sub = subs[index]
        count = self.builder.info.splits[sub].num_examples
        offset = sum(self.builder.info.splits[s].num_examples for s in subs[:index])
        tf_ = tf()

        def read(epoch=None):
            ds = self.builder.as_dataset(split=sub, shuffle_files=False,
                                         decoders={"image": tfds.decode.SkipDecoding()})

            def element(i, example):
                name = (example["file_name"] if self.has_file_name
                        else tf_.strings.format("{} example {}", (split, i + offset)))
                return {"encoded": example["image"], "name": name,
                        "label": tf_.cast(example["label"], tf_.int32)}
            return ds.enumerate().map(element)
        return Part(count, read, False, offset)


# ---------------------------------------------------------------------------------------------
# ImageFolder.

def _split_dir(data_dir: str, split: str, form: str) -> str:
    for name in (split, ALIASES.get(split)):
        if name and os.path.isdir(os.path.join(data_dir, name)):
            return name
    names = " or ".join(f"{n}/" for n in (split, ALIASES.get(split)) if n)
    raise DatasetNotFound(f"the {form} in {data_dir} has no {split} split (no folder {names}); "
                          "add it, or set --config.train_split / --config.eval_split to the "
                          "folder's name.")


@functools.lru_cache(maxsize=8)
def _list_folder(root: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """(class names, ((path, class index), ...)) of an ImageFolder split, sorted: each class
    folder's images at any depth below it (as torchvision's ImageFolder), hidden files and
    folders (".ipynb_checkpoints") left out; a broken link is refused."""
    classes, files = [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        images = []
        for folder, dirs, names in os.walk(entry.path, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                path = os.path.join(folder, name)
                if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                if not os.path.exists(path):
                    raise DatasetNotFound(f"{path} is a broken link; restore what it points "
                                          "to, or remove it.")
                images.append(path)
        if not images:
            raise DatasetNotFound(f"class folder {entry.path} holds no image ("
                                  f"{', '.join(IMAGE_SUFFIXES)}); add its images or remove it.")
        files += [(path, len(classes)) for path in images]
        classes.append(entry.name)
    if not classes:
        raise DatasetNotFound(f"{root} holds no class folders; an ImageFolder split holds one "
                              "folder of images per class (train/<class>/*.JPEG).")
    return tuple(classes), tuple(files)


class ImageFolderSource(Source):
    form = "image_folder"
    repair = "replace it with an intact copy (removing it would change the run's data)"

    def __init__(self, data_dir: str | None, train_split: str):
        data_dir = _require_dir(data_dir, "image_folder")
        if detect(data_dir) != "image_folder" and not os.path.isdir(
                os.path.join(data_dir, train_split)):
            raise not_recognised(data_dir, "ImageFolder tree")
        self.data_dir, self.where = data_dir, f"the ImageFolder tree in {data_dir}"
        self.classes, _ = _list_folder(os.path.join(
            data_dir, _split_dir(data_dir, train_split, "ImageFolder tree")))
        self.num_classes = len(self.classes)

    def files(self, split: str) -> tuple[tuple[str, int], ...]:
        root = os.path.join(self.data_dir, _split_dir(self.data_dir, split, "ImageFolder tree"))
        classes, files = _list_folder(root)
        unknown = sorted(set(classes) - set(self.classes))
        if unknown:
            raise DatasetNotFound(f"{root} has class folder(s) the training split lacks "
                                  f"({', '.join(unknown[:3])}); the classes are the training "
                                  "split's folders: remove them or add them to training.")
        index = {name: self.classes.index(name) for name in classes}
        return tuple((path, index[classes[k]]) for path, k in files)

    def examples(self, split: str) -> int:
        return len(self.files(split))

    def part(self, split, processes, index, seed=0, global_batch=0) -> Part:
        """Training: every epoch a permutation of the whole split drawn from (seed, epoch),
        each global batch split between the processes as for in-memory data; evaluation
        (epoch None): the sorted files, in contiguous parts."""
        files = self.files(split)
        paths = np.array([p for p, _ in files])
        labels = np.array([k for _, k in files], np.int32)
        tf_ = tf()
        local = global_batch // processes
        steps = len(files) // global_batch if global_batch else 0
        bounds = np.linspace(0, len(files), processes + 1).astype(int)
        count = steps * local if global_batch else bounds[index + 1] - bounds[index]

        def read(epoch=None):
            if not global_batch:
                rows = np.arange(len(files))[bounds[index]:bounds[index + 1]]
            else:
                order = np.random.default_rng([seed, epoch]).permutation(len(files))
                rows = order[:steps * global_batch].reshape(steps, global_batch)
                rows = rows[:, index * local:(index + 1) * local].reshape(-1)
            ds = tf_.data.Dataset.from_tensor_slices((paths[rows], labels[rows]))
            return ds.map(lambda path, label: {"encoded": tf_.io.read_file(path),
                                               "label": label, "name": path})
        offset = 0 if global_batch else int(bounds[index])
        return Part(int(count), read, True, offset)


# ---------------------------------------------------------------------------------------------
# TF-slim's TFRecords.

def count_records(path: str) -> int:
    """The records in a TFRecord file, from its framing (each record: an 8-byte length, its
    4-byte checksum, the data, a 4-byte checksum), seeking past the data; `DatasetDamaged`
    where the file is cut short."""
    size, count, at = os.path.getsize(path), 0, 0
    with open(path, "rb") as f:
        while at < size:
            header = f.read(12)
            at += 12 + int.from_bytes(header[:8], "little") + 4 if len(header) == 12 else size + 1
            if at > size:
                raise DatasetDamaged(f"{path} is cut short (in record {count + 1}); copy it "
                                     "again or rebuild it.")
            f.seek(at)
            count += 1
    return count


SLIM_NAME = re.compile(r"^([\w.]+?)-(\d+)-of-(\d+)$")


@functools.lru_cache(maxsize=16)
def _shards(data_dir: str, split: str) -> tuple[tuple[str, int], ...]:
    """((path, records), ...) of a split's shards: every one of its -of-N there, none empty
    or cut short, all of one N."""
    names = [n for n in _names(data_dir) if n.startswith(f"{split}-")]
    if not names:
        raise DatasetNotFound(f"the TF-slim TFRecords in {data_dir} have no {split} split (no "
                              f"{split}-00000-of-NNNNN); set --config.train_split / "
                              "--config.eval_split to its files' prefix.")
    strange = [n for n in names if not (SLIM_NAME.match(n) and SLIM_NAME.match(n).group(1)
                                        == split)]
    if strange:
        raise DatasetNotFound(f"{os.path.join(data_dir, strange[0])} is not a TF-slim shard "
                              f"name ({split}-NNNNN-of-NNNNN; compressed shards are not read): "
                              "rename, uncompress or move it.")
    parsed = {n: (int(SLIM_NAME.match(n).group(2)), int(SLIM_NAME.match(n).group(3)))
              for n in names}
    totals = sorted({total for _, total in parsed.values()})
    if len(totals) > 1:
        raise DatasetDamaged(f"the {split} shards in {data_dir} are of {len(totals)} sets "
                             f"(-of-{', -of-'.join(map(str, totals))}); keep one set.")
    total, have = totals[0], {index for index, _ in parsed.values()}
    missing = [i for i in range(total) if i not in have]
    if missing:
        prefix, index, of = SLIM_NAME.match(names[0]).groups()  # the names' own digit widths
        raise DatasetDamaged(f"{len(missing)} of the {total} {split} shards in {data_dir} are "
                             f"missing, e.g. {prefix}-{missing[0]:0{len(index)}d}-of-"
                             f"{of}; restore them.")
    paths = [os.path.join(data_dir, n) for n in sorted(names, key=lambda n: parsed[n][0])]
    counts = [count_records(path) for path in paths]
    empty = [path for path, count in zip(paths, counts) if count == 0]
    if empty:
        raise DatasetDamaged(f"{empty[0]} is empty (a failed copy?); copy it again or "
                             "rebuild it.")
    return tuple(zip(paths, counts))


SLIM_FEATURES = ("image/encoded", "image/class/label", "image/filename")


def _parse_slim(record):
    tf_ = tf()
    features = tf_.io.parse_single_example(record, {
        "image/encoded": tf_.io.FixedLenFeature([], tf_.string),
        "image/class/label": tf_.io.FixedLenFeature([], tf_.int64),
        "image/filename": tf_.io.FixedLenFeature([], tf_.string, default_value="")})
    return features


@functools.lru_cache(maxsize=8)
def _largest_label(paths: tuple[str, ...]) -> tuple[int, int]:
    """(smallest, largest) label of the records in `paths`: one pass over them (read whole,
    since a record's fields cannot be read apart; no image is decoded)."""
    tf_ = tf()
    labels = tf_.data.TFRecordDataset(list(paths), num_parallel_reads=8).map(
        lambda r: tf_.io.parse_single_example(
            r, {"image/class/label": tf_.io.FixedLenFeature([], tf_.int64)})[
                "image/class/label"], num_parallel_calls=tf_.data.AUTOTUNE)
    try:
        low, high = labels.reduce((tf_.constant(2 ** 62, tf_.int64), tf_.constant(-1, tf_.int64)),
                                  lambda acc, x: (tf_.minimum(acc[0], x),
                                                  tf_.maximum(acc[1], x)))
    except tf_.errors.OpError as error:
        raise DatasetDamaged(f"the TF-slim records {paths[0]}, ... cannot be read as TF-slim's "
                             f"ImageNet records ({one_line(error)}); they need the feature "
                             "image/class/label (int64).") from None
    return int(low), int(high)


class SlimSource(Source):
    form = "slim_tfrecords"
    repair = "rebuild its shard with an intact copy of the image (build_imagenet_data.py)"
    label_base = 1
    label_rule = "TF-slim's 1-based labels, up to the evaluation split's largest"

    def __init__(self, data_dir: str | None, eval_split: str):
        data_dir = _require_dir(data_dir, "slim_tfrecords")
        if detect(data_dir) != "slim_tfrecords":
            raise not_recognised(data_dir, "TF-slim TFRecords")
        self.data_dir, self.where = data_dir, f"the TF-slim TFRecords in {data_dir}"
        # The class count: the largest label of the evaluation split (config.eval_split),
        # whose every class ImageNet's validation has; the training split's labels are
        # checked as they are read.
        paths = tuple(p for p, _ in self.shards(eval_split))
        low, high = _largest_label(paths)
        if low < 1:
            raise DatasetDamaged(f"{self.where} hold label {low} in the {eval_split} split; "
                                 "TF-slim's labels are 1-based (0 is its background class, "
                                 "which ImageNet's records never use): rebuild them with "
                                 "build_imagenet_data.py.")
        self.num_classes = high  # labels 1..high, read as 0..high-1

    def shards(self, split: str):
        return _shards(self.data_dir, self._layout_name(split))

    def _layout_name(self, split: str) -> str:
        """The split's files' prefix: its name, else its alias where only that is there."""
        for name in (split, ALIASES.get(split)):
            if name and any(n.startswith(f"{name}-") for n in _names(self.data_dir)):
                return name
        return split

    def examples(self, split: str) -> int:
        return sum(count for _, count in self.shards(split))

    def part(self, split, processes, index, seed=0, global_batch=0) -> Part:
        """Process `index` reads every `processes`-th shard, in order."""
        shards = self.shards(split)[index::processes]
        mine = [p for p, _ in shards]
        offset = sum(c for i, (_, c) in enumerate(self.shards(split))
                     if i % processes < index) if processes > 1 else 0
        tf_ = tf()

        def read(epoch=None):
            def element(shard, record):  # a label outside 1..classes is refused where read
                features = _parse_slim(record)
                name = tf_.strings.join([features["image/filename"], " (in ",
                                         tf_.strings.split(shard, "/")[-1], ")"])
                return {"encoded": features["image/encoded"], "name": name,
                        "label": tf_.cast(features["image/class/label"] - 1, tf_.int32)}
            shards = tf_.data.Dataset.from_tensor_slices(mine)
            return shards.flat_map(lambda shard: tf_.data.TFRecordDataset(shard).map(
                lambda record: (shard, record))).map(element)
        return Part(sum(c for _, c in shards), read, False, offset)


# ---------------------------------------------------------------------------------------------

def open_source(config) -> Source:
    """The source `config.dataset` names, its faults found (a `DataError`, one sentence)."""
    if config.dataset == "image_folder":
        source = ImageFolderSource(config.data_dir, config.train_split)
    elif config.dataset == "slim_tfrecords":
        source = SlimSource(config.data_dir, config.eval_split)
    else:
        source = TFDSSource(config.dataset, config.data_dir)
    for split in (config.train_split, config.eval_split):
        source.examples(split)  # the split, its shards or files, there
    return source
