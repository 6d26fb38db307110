#!/usr/bin/env bash
# The GPU check as one command, run from the repository root on a machine with a GPU whose
# Python has jax (with CUDA), flax, optax, torch and torchvision; under 10 minutes on an H200:
#
#   bash benchmarks/device_check.sh [OUTDIR]    # default: $OUT, else benchmarks/results/device
#
# Our train and inference steps against Keras-JAX and torchvision on the GPU: batch 128 at
# 299×299×1000 in float32 (TensorFloat-32 as JAX's default precision allows) and bfloat16, then
# 256 at 75×75×10. Each run writes OUTDIR/<name>.json (after each size) and .log. Packages the
# machine lacks are installed from ./.whl if that folder holds wheels; for a machine with no
# index, fetch them beforehand for its Python (3.12 here), e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform \
#     manylinux_2_28_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0 ml_collections==1.1.0
set -uo pipefail
out=${1:-${OUT:-benchmarks/results/device}}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=jax
# JAX takes half the GPU; torchvision runs in its own process beside it.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.5
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  | tee "$out/device.txt"
python3 -c "import jax, flax, optax, keras, torch, torchvision; print('jax', jax.__version__,
'flax', flax.__version__, 'optax', optax.__version__, 'keras', keras.__version__, 'torch',
torch.__version__, 'torchvision', torchvision.__version__, jax.devices())" | tee -a "$out/device.txt"
run() {  # name, timeout in seconds, then train_step.py's arguments
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" python3 benchmarks/train_step.py --rounds 5 --steps 10 --no_memory \
    --torch_python python3 --json "$out/$name.json" "$@" 2>&1 | tee "$out/$name.log"
}
# Batch norm's hand-written gradient against flax's on this device (where pytest is there).
if python3 -c "import pytest" 2>/dev/null; then
  JAX_PLATFORMS= timeout 60 python3 -m pytest -q -o addopts= -p no:cacheprovider \
    tests/test_ops.py -k batch_norm 2>&1 | tail -3 | tee "$out/tests.log"
fi
run float32_299 190 --sizes 128x299x1000
run bfloat16_299 160 --sizes 128x299x1000 --dtype bfloat16
run float32_75 200 --sizes 256x75x10
