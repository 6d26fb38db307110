"""One commit's train step, kept warm and stepped on request: the child of
`benchmarks/train_step.py --commits A,B` (two commits interleaved in one run).

    python benchmarks/commit_server.py TREE BATCHxSIZExCLASSES DTYPE LOWERING

TREE is the commit's files (`git archive`); its own `benchmarks/train_step.py` builds its own
step (its `Ours`, whose constructor every commit since 2026-11-26 shares), so the package of
that commit is measured, not this one. It prints "ready <first-step seconds>", then answers
each line "train N" or "inference N" on stdin with the images/s of N steps, until stdin
closes. Standard library only before the commit's tree is on the path.
"""

import json
import os
import sys
import time


def main() -> None:
    tree, spec, dtype, lowering = sys.argv[1:5]
    sys.path[:0] = [tree, os.path.join(tree, "benchmarks")]  # that commit's package first
    os.chdir(tree)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import train_step  # the commit's own benchmark module
    batch, size, classes = (int(v) for v in spec.split("x"))
    began = time.perf_counter()
    ours = train_step.Ours(batch, size, classes, dtype, lowering)
    built = time.perf_counter() - began
    began = time.perf_counter()
    ours.train()
    print(json.dumps({"ready": True, "build_s": built,
                      "first_train_step_s": time.perf_counter() - began}), flush=True)
    for line in sys.stdin:
        kind, steps = line.split()
        began = time.perf_counter()
        for _ in range(int(steps)):
            getattr(ours, kind)()
        print(json.dumps({kind: batch * int(steps) / (time.perf_counter() - began)}),
              flush=True)


if __name__ == "__main__":
    main()
