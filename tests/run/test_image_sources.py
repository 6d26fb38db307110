"""The three forms ImageNet is held in (TFDS prepared from ILSVRC2012's tars, an ImageFolder
tree, TF-slim's TFRecords), on a tiny fake of each (tests/conftest.py): their facts from their
own metadata, their batches deterministic and resumable, and every fault of the data one
sentence before anything is written."""

import glob
import os
import shutil

import numpy as np
import pytest

from inception_flax.run import image_sources, input_pipeline
from inception_flax.sweeps import command
from tests.helpers import imagenet_config

SYNSETS = ["n01440764", "n01443537", "n01484850", "n01491361"]  # the fakes' 4 classes


def tree(folder: str) -> list[str]:
    return sorted(os.path.join(d, n) for d, dirs, names in os.walk(folder)
                  for n in dirs + names)


@pytest.fixture(scope="module")
def forms(tfds_imagenet, image_folder, slim_tfrecords):
    return {"imagenet2012": tfds_imagenet, "image_folder": image_folder,
            "slim_tfrecords": slim_tfrecords}


def test_each_form_takes_its_classes_and_sizes_from_the_data(forms):
    """TFDS: its ClassLabel (ImageNet's 1,000, whatever was prepared); the folder forms: the
    classes present (4). Every form labels a synset alike: TF-slim's 1-based labels minus 1,
    the sorted folders' index and TFDS's index into ImageNet's sorted synsets agree."""
    sources = {name: image_sources.open_source(imagenet_config(name, path))
               for name, path in forms.items()}
    assert {n: s.num_classes for n, s in sources.items()} == {
        "imagenet2012": 1000, "image_folder": 4, "slim_tfrecords": 4}
    assert {n: (s.examples("train"), s.examples("validation")) for n, s in sources.items()} \
        == {"imagenet2012": (24, 12), "image_folder": (24, 12), "slim_tfrecords": (24, 12)}
    for name, source in sources.items():
        part = source.part("train", 1, 0, seed=0, global_batch=8)
        for element in part.read(0).take(24):
            stem = os.path.basename(element["name"].numpy().decode())
            assert stem.split("_")[0] == SYNSETS[int(element["label"])], (name, stem)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagenet2012", "image_folder", "slim_tfrecords"])
def test_streamed_batches_are_deterministic_and_resumable(forms, dataset):
    config = imagenet_config(dataset, forms[dataset], preprocessing="inception")
    data = input_pipeline.create(config, 8, 8)
    assert data.steps_per_epoch == 3 and data.num_classes == (1000 if dataset == "imagenet2012"
                                                              else 4)
    in_order = data.train_batches(0)
    first = [next(in_order) for _ in range(4)]  # into the second epoch
    assert first[0]["image"].shape == (8, 75, 75, 3) and first[0]["image"].dtype == np.float32
    assert -1.0 <= first[0]["image"].min() and first[0]["image"].max() <= 1.0
    for step in (1, 3):
        alone = next(data.train_batches(step))
        np.testing.assert_array_equal(alone["image"], first[step]["image"])
        np.testing.assert_array_equal(alone["label"], first[step]["label"])
    epoch = np.concatenate([b["label"] for b in first[:3]])
    assert sorted(epoch) != list(epoch)  # shuffled
    evaluation = list(data.eval_batches())
    assert sum(int(b["mask"].sum()) for b in evaluation) == 12


BAD = [  # (form, how the data is spoilt or the config set, what the sentence says)
    ("imagenet2012", {"data_dir": "/nonexistent/data"}, "/nonexistent/data does not exist"),
    ("image_folder", {"data_dir": None}, "config.data_dir is not set"),
    ("imagenet2012", {"dataset": "imagenet2013"}, "did you mean imagenet2012"),
    ("image_folder", {"dataset": "imagenet2012"}, "looks like an ImageFolder tree; set "
                                                   "--config.dataset=image_folder"),
    ("slim_tfrecords", {"dataset": "image_folder"}, "looks like TF-slim TFRecords"),
    ("imagenet2012", {"global_batch_size": 32}, "24 examples, fewer than one global batch of 32"),
    ("slim_tfrecords", {"global_batch_size": 32}, "fewer than one global batch of 32"),
    ("image_folder", {"global_batch_size": 32}, "fewer than one global batch of 32"),
    ("imagenet2012", {"eval_split": "test"}, "has no split 'test' (it has train, validation)"),
    ("image_folder", {"eval_split": "test"}, "has no test split (no folder test/)"),
    ("slim_tfrecords", {"train_split": "training"}, "have no training split"),
    ("image_folder", {"in_memory": True}, "streamed from its files, not held in memory"),
]


@pytest.mark.parametrize("dataset,change,message", BAD)
def test_bad_data_is_one_sentence_before_anything_is_written(forms, tmp_path, capsys, dataset,
                                                             change, message):
    config = imagenet_config(dataset, forms[dataset])
    config.update_from_flattened_dict(change)
    before = tree(forms[dataset])
    code = command.main(config, command.Flags(str(tmp_path / "run")))
    error = capsys.readouterr().err
    assert code == 2 and message in error and error.count("\n") == 1, error
    assert not os.path.exists(tmp_path / "run") and tree(forms[dataset]) == before


def spoilt(source: str, tmp_path, spoil) -> str:
    """A copy of a fake data folder, spoilt by `spoil(folder)`."""
    copy = str(tmp_path / "data")
    shutil.copytree(source, copy)
    spoil(copy)
    return copy


def remove(pattern):
    return lambda folder: [os.remove(p) for p in glob.glob(os.path.join(folder, pattern))]


def cut(pattern, keep=-100):
    def spoil(folder):
        path = glob.glob(os.path.join(folder, pattern))[0]
        data = open(path, "rb").read()
        open(path, "wb").write(data[:keep])
    return spoil


@pytest.mark.parametrize("dataset,spoil,message", [
    ("imagenet2012", remove("imagenet2012/*/imagenet2012-train.tfrecord-*"),
     "1 of the train split's 1 shard(s) are missing"),
    ("imagenet2012", remove("imagenet2012/*/imagenet2012-validation.tfrecord-*"),
     "1 of the validation split's 1 shard(s) are missing"),
    ("slim_tfrecords", remove("train-00001-of-00002"),
     "1 of the 2 train shards in"),
    ("slim_tfrecords", remove("validation-*"), "have no validation split"),
    ("slim_tfrecords", cut("train-00001-of-00002"), "train-00001-of-00002 is cut short"),
    ("image_folder", remove("val/n01443537/*"), "val/n01443537 holds no image"),
    ("image_folder", lambda f: os.makedirs(os.path.join(f, "val", "n99999999")),
     "holds no image"),
    ("image_folder", lambda f: os.symlink("/nonexistent.JPEG",
                                          os.path.join(f, "train", SYNSETS[0], "x.JPEG")),
     "is a broken link"),
    ("slim_tfrecords", lambda f: shutil.copy(os.path.join(f, "train-00000-of-00002"),
                                             os.path.join(f, "train-00000-of-00003")),
     "are of 2 sets (-of-2, -of-3)"),
    ("slim_tfrecords", lambda f: open(os.path.join(f, "validation-00000-of-00001"), "w").close(),
     "validation-00000-of-00001 is empty"),
    ("slim_tfrecords", lambda f: os.rename(os.path.join(f, "train-00001-of-00002"),
                                           os.path.join(f, "train-00001-of-00002.gz")),
     "train-00001-of-00002.gz is not a TF-slim shard name"),
    ("imagenet2012", cut("imagenet2012/*/imagenet2012-train.tfrecord-*", -3000),
     "is cut short"),
])
def test_a_missing_or_cut_file_is_one_sentence_before_anything_is_written(
        forms, tmp_path, capsys, dataset, spoil, message):
    data_dir = spoilt(forms[dataset], tmp_path, spoil)
    before = tree(data_dir)
    code = command.main(imagenet_config(dataset, data_dir),
                        command.Flags(str(tmp_path / "run")))
    error = capsys.readouterr().err
    assert code == 2 and message in error and error.count("\n") == 1, error
    assert not os.path.exists(tmp_path / "run") and tree(data_dir) == before


def test_a_class_the_training_split_lacks_is_refused(image_folder, tmp_path, capsys):
    def extra(folder):
        shutil.copytree(os.path.join(folder, "val", SYNSETS[0]),
                        os.path.join(folder, "val", "n99999999"))
    data_dir = spoilt(image_folder, tmp_path, extra)
    code = command.main(imagenet_config("image_folder", data_dir),
                        command.Flags(str(tmp_path / "run")))
    error = capsys.readouterr().err
    assert code == 2 and "class folder(s) the training split lacks (n99999999)" in error


def test_a_background_label_in_slim_records_is_refused(tmp_path, capsys):
    from tests.scripts import fake_imagenet
    import tensorflow as tf
    fake_imagenet.slim_tfrecords(str(tmp_path / "data"))
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(tmp_path / "data" / "validation-00000-of-00001")) as writer:
        writer.write(fake_imagenet.slim_example(fake_imagenet.jpeg(rng), "x.JPEG", 0,
                                                "background").SerializeToString())
    code = command.main(imagenet_config("slim_tfrecords", str(tmp_path / "data")),
                        command.Flags(str(tmp_path / "run")))
    error = capsys.readouterr().err
    assert code == 2 and "label 0" in error and "1-based" in error


def test_each_variant_of_a_sweep_takes_its_own_datas_classes(forms):
    """A sweep whose variants name other data: each variant's head has its data's classes."""
    from experiments import factorization
    from inception_flax.sweeps import plan
    config = imagenet_config("imagenet2012", forms["imagenet2012"])
    config.sweep = factorization.get_config("imagenet").sweep
    config.sweep.axes = [{name: {"dataset": name, "data_dir": path}
                          for name, path in forms.items()}]
    config.sweep.baseline, config.sweep.seeds = "imagenet2012", (0,)
    classes = {run.variant: run.model.num_classes for run in plan.expand(config)}
    assert classes == {"imagenet2012": 1000, "image_folder": 4, "slim_tfrecords": 4}


def test_the_sentence_names_the_form_a_folder_does_hold(forms, tmp_path, capsys):
    for config, said in (
            (imagenet_config("image_folder", forms["imagenet2012"]),
             "but a prepared TFDS imagenet2012; set --config.dataset=imagenet2012"),
            (imagenet_config("imagenet2012", os.path.join(forms["imagenet2012"],
                                                          "imagenet2012")),
             f"one level too deep; set --config.data_dir={forms['imagenet2012']}")):
        assert command.main(config, command.Flags(str(tmp_path / "run"))) == 2
        error = capsys.readouterr().err
        assert said in error and error.count("\n") == 1, error


def test_an_image_folder_takes_nested_images_and_leaves_hidden_folders_out(image_folder,
                                                                          tmp_path):
    def nest(folder):
        first = sorted(glob.glob(os.path.join(folder, "train", SYNSETS[0], "*")))[0]
        os.makedirs(os.path.join(folder, "train", SYNSETS[0], "more"))
        shutil.move(first, os.path.join(folder, "train", SYNSETS[0], "more"))
        os.makedirs(os.path.join(folder, "train", ".ipynb_checkpoints"))
    source = image_sources.open_source(imagenet_config("image_folder",
                                                       spoilt(image_folder, tmp_path, nest)))
    assert source.num_classes == 4 and source.examples("train") == 24


def test_a_bad_record_met_in_reading_names_its_shard(tmp_path):
    """TF-slim: a label of 0 (TF-slim's background) and an image cut short in a training
    shard are found as they are read, each named with its shard and what to do."""
    import tensorflow as tf
    from tests.scripts import fake_imagenet
    rng = np.random.default_rng(1)
    for label, image, said in ((0, fake_imagenet.jpeg(rng), "has label 0, outside the data's "
                                "4 classes"),
                               (2, fake_imagenet.jpeg(rng)[:300], "cannot be read (")):
        folder = str(tmp_path / f"data{label}")
        fake_imagenet.slim_tfrecords(folder)
        with tf.io.TFRecordWriter(os.path.join(folder, "train-00001-of-00002")) as writer:
            for _ in range(12):
                writer.write(fake_imagenet.slim_example(image, "bad.JPEG", label, "x")
                             .SerializeToString())
        data = input_pipeline.create(imagenet_config("slim_tfrecords", folder), 8, 8)
        with pytest.raises(input_pipeline.DatasetDamaged) as raised:
            for _ in range(3):
                next(data.train_batches(0))
        message = str(raised.value)
        assert message.startswith("bad.JPEG (in train-00001-of-00002) in the train split of "
                                  f"the TF-slim TFRecords in {folder}") and said in message


def test_a_finished_sweep_writes_its_tables_without_its_data(image_folder, tmp_path, capsys):
    """The classes of a sweep whose data is gone come from what its runs recorded; only runs
    left to train need the data."""
    from experiments import factorization
    from inception_flax.sweeps import execute
    from tests.helpers import fake_train
    data_dir = spoilt(image_folder, tmp_path, lambda folder: None)
    config = imagenet_config("image_folder", data_dir)
    config.sweep = factorization.get_config("imagenet").sweep
    config.sweep.update(only="released,35x35_fig5", seeds=(0,))
    workdir = str(tmp_path / "sweep")
    assert execute.run_sweep(config, workdir, train_fn=fake_train([])) == 0
    shutil.rmtree(data_dir)
    assert command.main(config, command.Flags(workdir)) == 0
    assert "| 35x35_fig5 (a) |" in capsys.readouterr().out
