"""The disk a run writes to: a workdir checked before anything starts, and a full or read-only
disk recognised in the forms it takes (our OSError, orbax's and TensorStore's text) and said in
one sentence. CI runs as root on one disk, so the faults are injected."""

import errno
import logging
import os
import warnings
from types import SimpleNamespace

import pytest

from inception_flax.utils import disk

ORBAX = ('RESOURCE_EXHAUSTED: Error writing local file "/w/checkpoints/8.orbax-checkpoint-tmp/'
         'state/_sharding": Failed to write 49727 bytes to file 12: No space left on device '
         "[os_error_code='28']")


def test_a_disk_fault_is_recognised_in_each_form_it_takes():
    assert disk.fault_of(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert disk.fault_of(OSError(errno.EROFS, "Read-only file system")) == "read-only"
    assert disk.fault_of(ValueError(ORBAX)) == "full"
    try:  # raised while handling another: the chain is searched
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError:
            raise RuntimeError("the checkpoint could not be written")
    except RuntimeError as chained:
        assert disk.fault_of(chained) == "over its quota"
    assert disk.fault_of(ValueError("learning_rate=-1 is out of range")) is None
    assert disk.fault_of(OSError(errno.ENOENT, "No such file")) is None


def test_a_full_disk_is_one_sentence_with_the_free_space_and_a_checkpoints_size(
        tmp_path, monkeypatch):
    step = tmp_path / "fig4" / "seed0" / "checkpoints" / "8"
    step.mkdir(parents=True)
    (step / "state").write_bytes(b"x" * 3 * 1024 * 1024)
    (tmp_path / "fig4" / "seed0" / "checkpoints" / "12.orbax-checkpoint-tmp").mkdir()
    monkeypatch.setattr(disk.os, "statvfs", lambda path: SimpleNamespace(
        f_bavail=100, f_frsize=4096, f_flag=0))
    sentence = disk.describe("full", str(tmp_path))
    assert sentence == (f"the disk holding {tmp_path} is full (400.0 KiB free; one checkpoint "
                        "of this run takes 3.0 MiB): nothing was lost (each run resumes from its "
                        "newest complete checkpoint); make room and run the same command again.")
    assert "no checkpoint was written yet" in disk.describe("full", str(tmp_path / "new"))
    assert disk.describe("read-only", str(tmp_path)).startswith(
        f"the disk holding {tmp_path} turned read-only: nothing was lost")


def test_the_other_writers_keep_quiet_about_a_disk_fault(caplog):
    disk.quiet_disk_faults()
    with caplog.at_level(logging.ERROR):
        logging.getLogger("asyncio").error("Task exception was never retrieved: " + ORBAX)
        logging.getLogger("absl").error("_SignalingThread.run() raised: " + ORBAX)
        logging.getLogger("absl").error("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        disk.quiet_disk_faults()
        warnings.warn("Error writing persistent compilation cache entry for 'jit_update': "
                      "OSError: [Errno 28] No space left on device")
    assert caught == []


def test_a_workdir_that_cannot_be_written_is_refused_before_anything_is(tmp_path, monkeypatch):
    disk.check_workdir(str(tmp_path / "new" / "run"))  # created later, by the run
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"--workdir .*/file is a file, not a directory"):
        disk.check_workdir(str(tmp_path / "file"))
    with pytest.raises(ValueError, match=r"cannot be created: .*/file is a file"):
        disk.check_workdir(str(tmp_path / "file" / "run"))
    real = os.statvfs
    monkeypatch.setattr(disk.os, "statvfs", lambda path: SimpleNamespace(
        f_flag=real(path).f_flag | os.ST_RDONLY))
    with pytest.raises(ValueError, match=rf"--workdir {tmp_path}/run is on a read-only file "
                                         rf"system \({tmp_path}\)"):
        disk.check_workdir(str(tmp_path / "run"))


def test_stderr_drops_only_the_closed_event_loop_tracebacks():
    import io
    noise = ('Traceback (most recent call last):\n'
             '  File "/usr/lib/python3.11/asyncio/base_events.py", line 806, in '
             'call_soon_threadsafe\n    self._check_closed()\n'
             '  File "/usr/lib/python3.11/asyncio/base_events.py", line 519, in _check_closed\n'
             "    raise RuntimeError('Event loop is closed')\n"
             "RuntimeError: Event loop is closed\n")
    ours = ('Traceback (most recent call last):\n  File "/w/run_experiment.py", line 3, in '
            "main\n    loop.close()\nRuntimeError: Event loop is closed\n")
    out = io.StringIO()
    stderr = disk._QuietStderr(out)
    for text in ("warning: one\n", noise, noise[:40], noise[40:], ours, "half a li", "ne\n",
                 "no newline"):
        stderr.write(text)
    stderr.flush()
    assert out.getvalue() == "warning: one\n" + ours + "half a line\nno newline"
