"""What a run shows and leaves behind: a progress line, `metrics.jsonl`, TensorBoard events and
`final.json`. Only process 0 writes."""

from __future__ import annotations

import json
import os
import socket
import time

import jax
import numpy as np

from inception_flax.run import run_dir
from inception_flax.utils import files


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


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
    """One run's progress lines and `metrics.jsonl` (and TensorBoard events), over all the
    segments it is trained in: a run stopped and resumed (or evaluated again) keeps the
    history of its earlier segments up to the checkpoint it resumes from.

    `metrics.jsonl` holds, besides the training and evaluation records, one `segment` record
    at every checkpoint and at the end: when the segment's set-up began, its wall time so far
    and its start-up (set-up, compilations and first step). `summary` reads the run's
    throughput, wall time and start-up from all of them, so a resumed or re-evaluated run
    reports the whole run, not its last segment."""

    def __init__(self, workdir: str, config, total_steps: int, start_step: int,
                 global_batch: int, prefix: str = "", began: float | None = None):
        self.workdir, self.total_steps, self.global_batch = workdir, total_steps, global_batch
        self.prefix = prefix  # names the seed where several train as one program
        self.writes = jax.process_index() == 0
        self.began = time.time() if began is None else began  # this segment's set-up began
        self.start_step, self.startup_s = start_step, None
        self.last_time, self.last_step = time.time(), start_step
        self.first_interval = True  # it includes compilation: left out of the throughput
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        self.records: list[dict] = []  # the run's kept history, then this segment's
        self.history = 0
        self.summary_writer = None
        if not self.writes:
            return
        # A resumed run rewrites the history after its checkpoint, so no step appears twice.
        self.records = [r for r in run_dir.read_metrics(workdir) if r["step"] <= start_step]
        self.history = len(self.records)  # records of earlier segments
        if self.records or os.path.exists(self.metrics_path):
            files.write_text_atomically(self.metrics_path, "".join(
                json.dumps(r, default=float) + "\n" for r in self.records))
        if config.tensorboard:
            self.summary_writer = EventWriter(os.path.join(workdir, "tensorboard"))

    def say(self, text: str) -> None:
        if self.writes:
            print(text, flush=True)

    def _append(self, record: dict) -> None:
        self.records.append(record)
        if not self.writes:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        if self.summary_writer is not None:
            self.summary_writer.scalars(record["step"], {
                k: v for k, v in record.items()
                if k not in ("step", "interval_steps", "interval_s")
                and isinstance(v, (int, float))
                and not isinstance(v, bool)})

    def started(self) -> None:
        """Marks the end of this segment's start-up (its first step has run)."""
        self.startup_s = time.time() - self.began

    def log_train(self, step: int, metrics: list[dict]) -> dict:
        """Averages the steps since the last log; prints the progress line."""
        now = time.time()
        steps, seconds = step - self.last_step, now - self.last_time
        record = {"step": step}
        for key in metrics[0]:
            record[key] = float(np.mean([m[key] for m in metrics]))
        record.update(images_per_s=steps * self.global_batch / max(seconds, 1e-9),
                      interval_steps=steps, interval_s=seconds, timed=not self.first_interval)
        self.first_interval = False
        self.last_time, self.last_step = now, step
        self._append(record)
        if self.writes:
            eta = (self.total_steps - step) * self.global_batch / max(
                self.images_per_second() or 0.0, 1e-9)
            print(f"{self.prefix}step {step}/{self.total_steps} | loss {record['loss']:.4f} | "
                  f"train acc {record['accuracy']:.3f} | lr {record['learning_rate']:.4g} | "
                  f"{record['images_per_s']:.0f} img/s | ETA {format_seconds(eta)}", flush=True)
        return record

    def log_eval(self, step: int, results: dict) -> None:
        record = {"step": step, **{k: v for k, v in results.items()
                                   if k.endswith(("top1", "top5"))}}
        self._append(record)
        if self.writes:
            if "raw_top1" in results:
                accuracy = (f"top-1 {results['raw_top1']:.4f} (EMA {results['ema_top1']:.4f}), "
                            f"top-5 {results['raw_top5']:.4f} (EMA {results['ema_top5']:.4f})")
            else:  # eval_raw_weights=False
                accuracy = (f"EMA top-1 {results['ema_top1']:.4f}, "
                            f"top-5 {results['ema_top5']:.4f}")
            print(f"{self.prefix}eval at step {step}: {accuracy} on "
                  f"{results['eval_examples']} images", flush=True)

    def log_segment(self, step: int) -> None:
        """This segment's wall time and start-up so far (at a checkpoint, and at the end)."""
        self._append({"step": step, "segment": {
            "began": self.began, "start_step": self.start_step,
            "wall_s": time.time() - self.began, "startup_s": self.startup_s}})

    def images_per_second(self) -> float | None:
        """Training throughput over the run's every segment, leaving out each segment's first
        interval (it includes compilation) unless no other was logged; None where the run
        trained no step."""
        intervals = _intervals(self.records, self.global_batch)
        timed = [(images, s) for images, s, is_timed in intervals if is_timed] or [
            (images, s) for images, s, _ in intervals]
        seconds = sum(s for _, s in timed)
        return sum(images for images, _ in timed) / seconds if seconds else None

    def summary(self) -> dict:
        """The run's `images_per_s`, `wall_time_s` (set-up, training and evaluation, summed
        over its segments) and `startup_s` (its first segment's), from every segment kept in
        its history; None where a figure is not known."""
        segments = {}
        for record in self.records:
            if "segment" in record:
                segments[record["segment"]["began"]] = record["segment"]
        segments[self.began] = {"began": self.began, "wall_s": time.time() - self.began,
                                "startup_s": self.startup_s}
        wall = sum(s["wall_s"] for s in segments.values())
        history = self.records[:self.history]
        if not any("segment" in r for r in history):  # a history written before 2026-12-02
            wall += sum(s for _, s, _ in _intervals(history, self.global_batch))
        first = segments[min(segments)]
        return {"images_per_s": self.images_per_second(), "wall_time_s": wall,
                "startup_s": first["startup_s"]}

    def write_final(self, record: dict) -> None:
        if self.writes:
            files.write_json_atomically(os.path.join(self.workdir, "final.json"), record)


def _intervals(records: list[dict], global_batch: int) -> list[tuple[float, float, bool]]:
    """(images, seconds, timed) of every logged training interval. Records written before
    2026-12-02 carry only the images per second: their steps are counted from the record
    before, their seconds follow, and the first one (with compilation) is the one left
    out."""
    intervals, previous = [], 0
    for record in records:
        if "loss" not in record:
            continue
        steps = record.get("interval_steps", record["step"] - previous)
        previous = record["step"]
        if "interval_s" in record:
            intervals.append((steps * global_batch, record["interval_s"], record["timed"]))
        elif record.get("images_per_s"):
            images = steps * global_batch
            intervals.append((images, images / record["images_per_s"], bool(intervals)))
    return intervals
