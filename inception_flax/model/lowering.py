"""How the network is handed to XLA on each backend: the one place that asks which backend runs.

Every choice here changes the program XLA is given, and with it speed and tracing time, but not
the function computed: each alternative computes what the other does (`tests/model/test_cpu_ops.py`
checks them against each other in float64). `choose` picks them from the requested lowering
(`InceptionConfig.lowering`) and the backend; the model's modules only read the result.

On a CPU (what was measured is in `benchmarks/NOTES.md`):
- convolutions run as im2col patches times the kernel (`ops.conv_as_matmul`), and max
  pooling's gradient as strided slices (`ops.max_pool`): XLA:CPU runs its own convolutions,
  and above all the kernel gradients JAX derives for them, far below its matmul throughput;
- the one-off initialisation program is compiled at LLVM's optimisation level 1, which gives
  the same values in less compilation time.
On every backend today, batch norm + ReLU carries its gradient written out (`ops.batch_norm`)
and parameters are read without flax's re-trace of their initializers (`layers.param`): both
were written for tracing time on the CPU; a GPU or TPU choice belongs here.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax


@dataclasses.dataclass(frozen=True)
class Lowering:
    """The choices, one field each."""

    convolution: Literal["xla", "matmul"] = "xla"  # lax.conv_general_dilated, or im2col + dot
    max_pool_gradient: Literal["xla", "slices"] = "xla"  # select-and-scatter, or slices
    batch_norm: Literal["flax", "written_out"] = "written_out"  # autodiff of flax's, or ours
    parameters: Literal["flax", "direct"] = "direct"  # Module.param, or `layers.param`
    initializer_options: tuple = ()  # (name, value) XLA compiler options for initialisation

    @property
    def compiler_options(self) -> dict | None:
        return dict(self.initializer_options) or None


def choose(requested: str = "auto", backend: str | None = None) -> Lowering:
    """The lowering for `requested` ("auto", "xla" or "matmul": `InceptionConfig.lowering`)
    on `backend` (default: JAX's default backend). "auto" is "matmul" on a CPU, "xla"
    elsewhere."""
    backend = backend or jax.default_backend()
    matmul = requested == "matmul" or (requested == "auto" and backend == "cpu")
    return Lowering(
        convolution="matmul" if matmul else "xla",
        max_pool_gradient="slices" if matmul else "xla",
        initializer_options=(("xla_backend_optimization_level", 1),) if backend == "cpu"
        else ())
