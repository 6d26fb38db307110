"""What a run shows and leaves behind: a progress line, `metrics.jsonl`, TensorBoard events and
`final.json`. Only process 0 writes."""

from __future__ import annotations

import json
import os
import socket
import time

import jax
import numpy as np


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def write_json_atomically(path: str, data: dict) -> None:
    """Writes a file that readers see whole or not at all, also where two processes (two
    shards of a sweep) write it at once."""
    write_text_atomically(path, json.dumps(data, indent=1, default=float))


def write_text_atomically(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


class EventWriter:
    """TensorBoard scalars written with TensorBoard's own protos and record framing, without
    importing TensorFlow, whose import would add seconds to every run's start-up."""

    def __init__(self, logdir: str):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        self.event_pb2, self.summary_pb2 = event_pb2, summary_pb2
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}"
        self.file = open(os.path.join(logdir, name), "ab")
        self.records = RecordWriter(self.file)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event) -> None:
        self.records.write(event.SerializeToString())
        self.records.flush()

    def scalars(self, step: int, values: dict) -> None:
        summary = self.summary_pb2.Summary(value=[
            self.summary_pb2.Summary.Value(tag=k, simple_value=float(v))
            for k, v in values.items()])
        self._write(self.event_pb2.Event(wall_time=time.time(), step=step, summary=summary))


class RunLog:
    def __init__(self, workdir: str, config, total_steps: int, start_step: int,
                 global_batch: int, prefix: str = ""):
        self.workdir, self.total_steps, self.global_batch = workdir, total_steps, global_batch
        self.prefix = prefix  # names the seed where several train as one program
        self.writes = jax.process_index() == 0
        self.last_time, self.last_step = time.time(), start_step
        self.timed_images, self.timed_seconds = 0, 0.0  # after the first (compiling) interval
        self.first_interval = True
        self.last_rate = 0.0
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        self.summary = None
        if not self.writes:
            return
        # A resumed run rewrites the history after its checkpoint, so no step appears twice.
        if os.path.exists(self.metrics_path):
            with open(self.metrics_path) as f:
                kept = [line for line in f if json.loads(line).get("step", 0) <= start_step]
            with open(self.metrics_path, "w") as f:
                f.writelines(kept)
        if config.tensorboard:
            self.summary = EventWriter(os.path.join(workdir, "tensorboard"))

    def say(self, text: str) -> None:
        if self.writes:
            print(text, flush=True)

    def _append(self, record: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        if self.summary is not None:
            self.summary.scalars(record["step"], {k: v for k, v in record.items()
                                                  if k != "step" and isinstance(v, (int, float))})

    def log_train(self, step: int, metrics: list[dict]) -> dict:
        """Averages the steps since the last log; prints the progress line."""
        now = time.time()
        steps, seconds = step - self.last_step, now - self.last_time
        images_per_s = self.last_rate = steps * self.global_batch / max(seconds, 1e-9)
        if not self.first_interval:
            self.timed_images += steps * self.global_batch
            self.timed_seconds += seconds
        self.first_interval = False
        self.last_time, self.last_step = now, step
        record = {"step": step}
        for key in metrics[0]:
            record[key] = float(np.mean([m[key] for m in metrics]))
        record["images_per_s"] = images_per_s
        if self.writes:
            self._append(record)
            eta = (self.total_steps - step) * self.global_batch / max(self.images_per_second(),
                                                                        1e-9)
            print(f"{self.prefix}step {step}/{self.total_steps} | loss {record['loss']:.4f} | "
                  f"train acc {record['accuracy']:.3f} | lr {record['learning_rate']:.4g} | "
                  f"{images_per_s:.0f} img/s | ETA {format_seconds(eta)}", flush=True)
        return record

    def log_eval(self, step: int, results: dict) -> None:
        record = {"step": step, **{k: v for k, v in results.items()
                                   if k.endswith(("top1", "top5"))}}
        if self.writes:
            self._append(record)
            if "raw_top1" in results:
                accuracy = (f"top-1 {results['raw_top1']:.4f} (EMA {results['ema_top1']:.4f}), "
                            f"top-5 {results['raw_top5']:.4f} (EMA {results['ema_top5']:.4f})")
            else:  # eval_raw_weights=False
                accuracy = (f"EMA top-1 {results['ema_top1']:.4f}, "
                            f"top-5 {results['ema_top5']:.4f}")
            print(f"{self.prefix}eval at step {step}: {accuracy} on "
                  f"{results['eval_examples']} images", flush=True)

    def images_per_second(self) -> float:
        """Training throughput, leaving out the first interval (it includes compilation)
        unless it is the only one."""
        if self.timed_seconds:
            return self.timed_images / self.timed_seconds
        return self.last_rate

    def write_final(self, record: dict) -> None:
        if self.writes:
            write_json_atomically(os.path.join(self.workdir, "final.json"), record)
