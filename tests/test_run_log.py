"""What a run leaves behind for TensorBoard, read back by TensorBoard's own event reader."""

import ml_collections
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from inception_flax.run_log import RunLog


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
