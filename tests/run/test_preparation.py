"""Preparing ImageNet apart from training: `python -m inception_flax.prepare` on a tiny fake of
ILSVRC2012's tar files through TFDS's real `imagenet2012` builder; bad tar files refused in one
sentence with nothing written; the folder forms checked, not prepared; training never
prepares."""

import os
import shutil
import tarfile

import pytest

from inception_flax import prepare
from inception_flax.sweeps import command
from tests.helpers import imagenet_config


def tree(folder) -> list[str]:
    return sorted(os.path.join(d, n) for d, dirs, names in os.walk(folder) for n in dirs + names)


def test_prepare_makes_imagenet2012_from_the_tars_and_keeps_it(ilsvrc_tars, tmp_path, capsys):
    import tensorflow_datasets as tfds
    data_dir = str(tmp_path / "tfds")
    os.makedirs(os.path.join(data_dir, "imagenet2012", "incomplete.KILLED_5.1.0"))  # a kill's
    assert prepare.main([f"--data_dir={data_dir}", f"--manual_dir={ilsvrc_tars}"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "incomplete.KILLED_5.1.0" in out
    assert out.strip().endswith("1000 classes, 24 train, 12 validation examples")
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    assert builder.is_prepared() and not os.path.exists(
        os.path.join(data_dir, "imagenet2012", "incomplete.KILLED_5.1.0"))
    names = builder.info.features["label"].names
    for example in builder.as_dataset(split="train"):  # labelled by the synset's own tar
        assert example["file_name"].numpy().decode().startswith(names[int(example["label"])])
    files = tree(data_dir)
    assert not any(name.endswith(".lock") for name in files)  # the lock is gone too
    assert prepare.main([f"--data_dir={data_dir}", f"--manual_dir={ilsvrc_tars}"]) == 0
    assert capsys.readouterr().out.startswith("already prepared: TFDS imagenet2012")
    assert tree(data_dir) == files


def _with_a_readme(path):
    with tarfile.open(path, "a") as tar:
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info)


@pytest.mark.parametrize("spoil,message", [
    (lambda d: shutil.rmtree(d), "does not exist; put ILSVRC2012_img_train.tar"),
    (lambda d: os.remove(os.path.join(d, "ILSVRC2012_img_val.tar")),
     "ILSVRC2012_img_val.tar is missing"),
    (lambda d: open(os.path.join(d, "ILSVRC2012_img_train.tar"), "wb").write(b"\0x" * 700),
     "is not a whole tar file"),
    (lambda d: _with_a_readme(os.path.join(d, "ILSVRC2012_img_val.tar")),
     "holds readme.txt, where ILSVRC2012's ILSVRC2012_img_val.tar holds only files named like "
     "ILSVRC2012_val_NNNNNNNN.JPEG"),
])
def test_bad_tar_files_are_one_sentence_and_nothing_is_written(ilsvrc_tars, tmp_path, capsys,
                                                               spoil, message):
    manual = str(tmp_path / "manual")
    shutil.copytree(ilsvrc_tars, manual)
    spoil(manual)
    data_dir = str(tmp_path / "tfds")
    assert prepare.main([f"--data_dir={data_dir}", f"--manual_dir={manual}"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert not os.path.exists(data_dir)


def _cut_at_a_member(path, keep):
    """The tar at `path` cut where its `keep`-th member begins (a copy stopped there)."""
    with tarfile.open(path) as tar:
        offset = list(tar)[keep].offset
    with open(path, "r+b") as f:
        f.truncate(offset)


def _junk_synset(path):
    """The training tar with its second synset's tar replaced by junk of the same size."""
    with tarfile.open(path) as tar:
        member = list(tar)[1]
    with open(path, "r+b") as f:
        f.seek(member.offset_data)
        f.write(b"junk" * (member.size // 4))


@pytest.mark.parametrize("spoil,message", [
    (lambda d: _cut_at_a_member(os.path.join(d, "ILSVRC2012_img_train.tar"), 2),
     "ILSVRC2012_img_train.tar is not a whole tar file (it ends without the blocks"),
    (lambda d: _cut_at_a_member(os.path.join(d, "ILSVRC2012_img_val.tar"), 6),
     "ILSVRC2012_img_val.tar is not a whole tar file"),
    (lambda d: _junk_synset(os.path.join(d, "ILSVRC2012_img_train.tar")),
     "n01443537.tar inside"),
])
def test_a_tar_file_cut_or_damaged_anywhere_is_refused(ilsvrc_tars, tmp_path, capsys, spoil,
                                                       message):
    manual = str(tmp_path / "manual")
    shutil.copytree(ilsvrc_tars, manual)
    spoil(manual)
    assert prepare.main([f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={manual}"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert not os.path.exists(tmp_path / "tfds")


def test_a_failed_or_interrupted_preparation_leaves_nothing(ilsvrc_tars, tmp_path, capsys,
                                                            monkeypatch):
    """Whatever TFDS wrote before failing (a download, say) or before Ctrl-C is removed, and
    TFDS's own error is one sentence; a data_dir that is a file is refused."""
    import tensorflow_datasets as tfds
    data_dir = tmp_path / "tfds"
    os.makedirs(data_dir / "kept")  # what was there before stays

    def fails(self, *args, **kwargs):
        os.makedirs(os.path.join(str(data_dir), "downloads", "extracted"))
        os.makedirs(os.path.join(str(data_dir), "imagenet2012", "5.1.0"))
        raise raised
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fails)
    for raised, code, said in ((RuntimeError("no route to host\n  more"), 2,
                                "TFDS could not prepare imagenet2012"),
                               (KeyboardInterrupt(), 130, "interrupted: nothing was kept")):
        assert prepare.main([f"--data_dir={data_dir}", f"--manual_dir={ilsvrc_tars}"]) == code
        error = capsys.readouterr().err
        assert said in error and error.count("\n") == 1, error
        assert tree(data_dir) == [str(data_dir / "kept")]
    (tmp_path / "a_file").write_text("")
    assert prepare.main([f"--data_dir={tmp_path / 'a_file'}",
                         f"--manual_dir={ilsvrc_tars}"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_the_folder_forms_are_checked_not_prepared(image_folder, slim_tfrecords, capsys):
    for dataset, folder in (("image_folder", image_folder), ("slim_tfrecords", slim_tfrecords)):
        files = tree(folder)
        assert prepare.main([f"--dataset={dataset}", f"--data_dir={folder}"]) == 0
        assert capsys.readouterr().out.startswith(
            f"nothing to prepare ({dataset} is read in place): ")
        assert tree(folder) == files
    assert prepare.main(["--dataset=image_folder", f"--data_dir={slim_tfrecords}"]) == 2
    assert "set --dataset=slim_tfrecords" in capsys.readouterr().err  # this command's flags


def test_training_never_prepares_a_dataset(ilsvrc_tars, tmp_path, capsys):
    """The tars in <data_dir>/downloads/manual, where TFDS would find them: the training
    command says how to prepare them, and writes nothing there or in its workdir."""
    data_dir = str(tmp_path / "tfds")
    shutil.copytree(ilsvrc_tars, os.path.join(data_dir, "downloads", "manual"))
    files = tree(data_dir)
    code = command.main(imagenet_config("imagenet2012", data_dir),
                        command.Flags(str(tmp_path / "run")))
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert (f"is not prepared in {data_dir}; prepare it first with `python -m "
            f"inception_flax.prepare --dataset=imagenet2012 --data_dir={data_dir}`") in error
    assert tree(data_dir) == files and not os.path.exists(tmp_path / "run")
