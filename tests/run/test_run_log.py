"""What a run leaves behind for TensorBoard, read back by TensorBoard's own event reader."""

import json

import ml_collections
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from inception_flax.run.run_log import RunLog


def test_tensorboard_scalars_are_readable_by_tensorboard(tmp_path, capsys):
    reporter = RunLog(str(tmp_path), ml_collections.ConfigDict({"tensorboard": True}),
                        total_steps=10, start_step=0, global_batch=4)
    reporter.log_train(2, [{"loss": 1.0, "accuracy": 0.5, "learning_rate": 0.1},
                           {"loss": 3.0, "accuracy": 0.25, "learning_rate": 0.1}])
    reporter.log_eval(2, {"raw_top1": 0.3, "ema_top1": 0.4, "raw_top5": 0.9, "ema_top5": 0.95,
                          "eval_examples": 10})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(2, 2.0)]
    assert [(e.step, e.value) for e in events.Scalars("accuracy")] == [(2, 0.375)]
    assert abs(events.Scalars("ema_top1")[0].value - 0.4) < 1e-7
    assert "step 2/10" in capsys.readouterr().out


def test_a_resumed_or_re_evaluated_run_reports_the_whole_run(tmp_path, monkeypatch):
    """Throughput, wall time and start-up over every segment kept in metrics.jsonl: a run
    evaluated again (its final.json lost) reports what its training measured, not 0."""
    config = ml_collections.ConfigDict({"tensorboard": False})
    now = [0.0]
    monkeypatch.setattr("inception_flax.run.run_log.time.time", lambda: now[0])
    first = RunLog(str(tmp_path), config, total_steps=8, start_step=0, global_batch=4)
    now[0] = 10.0
    first.started()  # start-up: 10 s
    for step in (2, 4, 6, 8):  # intervals of 10 s (the first, with compilation, left out)
        now[0] += 10.0
        first.log_train(step, [{"loss": 1.0, "accuracy": 0.5, "learning_rate": 0.1}])
        if step == 4:
            first.log_segment(step)  # a checkpoint
    first.log_segment(8)
    whole = first.summary()
    assert (whole["images_per_s"], whole["startup_s"], whole["wall_time_s"]) == (0.8, 10.0, 50.0)
    now[0] += 20.0
    # Evaluated again from its last checkpoint: the history is the run's.
    again = RunLog(str(tmp_path), config, total_steps=8, start_step=8, global_batch=4)
    now[0] += 20.0
    again.log_segment(8)
    summary = again.summary()
    assert summary["images_per_s"] == 0.8 and summary["startup_s"] == 10.0
    assert summary["wall_time_s"] == whole["wall_time_s"] + 20.0  # its own segment's too
    # Resumed from step 4: steps 6 and 8 are trained again, the history after 4 dropped.
    resumed = RunLog(str(tmp_path), config, total_steps=8, start_step=4, global_batch=4)
    assert [r["step"] for r in resumed.records if "loss" in r] == [2, 4]
    assert RunLog(str(tmp_path / "new"), config, 8, 8, 4).summary()["images_per_s"] is None


def test_a_history_written_before_segments_still_gives_its_throughput(tmp_path):
    lines = [{"step": 2, "loss": 1.0, "images_per_s": 1.0},  # compilation: left out
             {"step": 4, "loss": 1.0, "images_per_s": 8.0},
             {"step": 6, "loss": 1.0, "images_per_s": 2.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    log = RunLog(str(tmp_path), ml_collections.ConfigDict({"tensorboard": False}),
                 total_steps=6, start_step=6, global_batch=4)
    # 8 + 8 images in 1 + 4 seconds.
    assert log.summary()["images_per_s"] == 16 / 5
