"""torchvision's Inception-v3 train and inference steps, the PyTorch peer of `train_step.py`.

PyTorch is not a dependency of this project: run this file with an interpreter that has torch
and torchvision (`train_step.py --torch_python PATH` does, in its own process), e.g.

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch torchvision
    /tmp/torch/bin/python benchmarks/torchvision_step.py --sizes 8x299x1000,32x75x10

The train step is the same recipe as ours: forward (auxiliary head on where the input is large
enough for it, weighted 0.4), label-smoothed cross-entropy, backward, gradient clipping at
norm 2, RMSProp (decay 0.9, momentum 0.9, epsilon 1), and an EMA of the weights; PyTorch's
default thread count. On a CUDA device where there is one (timed with `torch.cuda.synchronize`),
with TensorFloat-32 allowed for float32 matmuls and convolutions as JAX's default precision
allows it; `--dtype bfloat16` runs the forward pass under `torch.autocast` (parameters and
optimizer state stay float32). Prints one JSON object per size.
"""

from __future__ import annotations

import json
import time

import torch
import torchvision

from common import median_and_spread, parser


def measure(batch: int, size: int, classes: int, rounds: int, steps: int,
            dtype: str = "float32") -> dict:
    aux = size >= 107  # torchvision's auxiliary head needs a 17×17 grid of at least 5×5
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    model = torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=True,
                                            num_classes=classes).to(device)
    ema = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.045, alpha=0.9, eps=1.0,
                                    momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)
    y = torch.randint(0, classes, (batch,), generator=generator).to(device)

    def train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = model(x)
            loss = loss_fn(out.logits, y) + 0.4 * loss_fn(out.aux_logits, y) if aux \
                else loss_fn(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1 - 0.9999)
        sync()

    def inference():
        model.eval()
        with torch.no_grad(), autocast:
            model(x)
        sync()

    result = {"batch": batch, "size": size, "classes": classes, "aux_head": aux,
              "torch": torch.__version__, "torchvision": torchvision.__version__,
              "threads": torch.get_num_threads(), "torch_device": str(device),
              "dtype": dtype}
    for kind, fn in (("train", train), ("inference", inference)):
        start = time.perf_counter()
        fn()
        result[f"torchvision_first_{kind}_step_s"] = time.perf_counter() - start
    samples = {"train": [], "inference": []}
    for round_ in range(rounds + 1):  # the first round warms up, as in train_step.py
        for kind, fn in (("train", train), ("inference", inference)):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            if round_:
                samples[kind].append(batch * steps / (time.perf_counter() - start))
    for kind, values in samples.items():
        result[f"torchvision_{kind}_images_per_s"], result[f"torchvision_{kind}_spread"] = \
            median_and_spread(values)
    return result


def main():
    parsed = parser(__doc__)
    parsed.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parsed.parse_args()
    for spec in args.sizes.split(","):
        batch, size, classes = (int(v) for v in spec.split("x"))
        print(json.dumps(measure(batch, size, classes, args.rounds, args.steps, args.dtype)),
              flush=True)


if __name__ == "__main__":
    main()
