"""What the benchmark scripts share; standard library only, so that the torchvision script can
import it from an environment without this project's dependencies."""

from __future__ import annotations

import argparse
import statistics


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every step benchmark takes: sizes, rounds and steps per round."""
    parsed = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parsed.add_argument("--sizes", default="8x299x1000,32x75x10",
                        help="BATCHxSIZExCLASSES, comma-separated")
    parsed.add_argument("--rounds", type=int, default=5)
    parsed.add_argument("--steps", type=int, default=3, help="steps per timed round")
    return parsed


def median_and_spread(values: list[float]) -> tuple[float, float]:
    """The median, and (max - min) / median: how noisy the rounds were."""
    median = statistics.median(values)
    return median, (max(values) - min(values)) / median
