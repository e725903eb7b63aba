"""Gradient check: affine layer, softmax, cross-entropy; backprop vs finite differences."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _demolib import parser

from microgrannd import Value, nn

DESCRIPTION = __doc__.splitlines()[0]


@dataclass
class Result:
    """What the check found."""

    loss: float
    max_rel_diff: float  # backprop against central differences, over X, W and B
    max_dscore_diff: float  # d loss / d scores against (softmax - onehot) / batch
    max_affine_diff: float  # dX, dW, dB against dY W^T, X^T dY, sum of dY
    n_checked: int


def loss_fn(X: list[list[Any]], W: list[list[Any]], B: list[Any], t: list[int]) -> tuple[Any, list[Any]]:
    """Mean cross-entropy of ``softmax(X W + B)`` against target classes ``t`` (floats or Values)."""
    n_out = len(B)
    scores = [[sum((x[i] * W[i][j] for i in range(len(x))), B[j]) for j in range(n_out)] for x in X]
    losses = [nn.cross_entropy(s, ti) for s, ti in zip(scores, t, strict=True)]
    return sum(losses[1:], losses[0]) * (1.0 / len(losses)), scores


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-8)


def numerical(f: Callable[[], float], cell: list[float], k: int, h: float) -> float:
    """Central difference of ``f`` in the entry ``cell[k]``."""
    old = cell[k]
    cell[k] = old + h
    up = f()
    cell[k] = old - h
    down = f()
    cell[k] = old
    return (up - down) / (2 * h)


def run(batch: int = 3, n_in: int = 4, n_out: int = 5, seed: int = 0, h: float = 1e-5) -> Result:
    """Build a random problem, backpropagate, and compare with finite differences."""
    rng = random.Random(seed)
    Xf = [[rng.gauss(0, 1) for _ in range(n_in)] for _ in range(batch)]
    Wf = [[rng.gauss(0, 1) for _ in range(n_out)] for _ in range(n_in)]
    Bf = [rng.gauss(0, 1) for _ in range(n_out)]
    t = [rng.randrange(n_out) for _ in range(batch)]

    X = [[Value(v) for v in row] for row in Xf]
    W = [[Value(v) for v in row] for row in Wf]
    B = [Value(v) for v in Bf]
    loss, scores = loss_fn(X, W, B, t)
    assert isinstance(loss, Value)
    loss.backward()

    # backprop against finite differences, entry by entry
    f = lambda: float(loss_fn(Xf, Wf, Bf, t)[0])
    diffs = []
    for values, floats in [*zip(X, Xf, strict=True), *zip(W, Wf, strict=True), (B, Bf)]:
        for k, v in enumerate(values):
            diffs.append(_rel(v.grad, numerical(f, floats, k, h)))

    # the gradient at the scores is (softmax - onehot) / batch
    dY = [[s.grad for s in row] for row in scores]
    dscore = 0.0
    for row, srow, ti in zip(dY, scores, t, strict=True):
        p = nn.softmax([s.data for s in srow])
        for j, g in enumerate(row):
            dscore = max(dscore, abs(g - (p[j] - (j == ti)) / batch))

    # the affine layer's rules: dX = dY W^T, dW = X^T dY, dB = sum over the batch of dY
    affine = 0.0
    for b in range(batch):
        for i in range(n_in):
            affine = max(affine, abs(X[b][i].grad - sum(dY[b][j] * Wf[i][j] for j in range(n_out))))
    for i in range(n_in):
        for j in range(n_out):
            affine = max(affine, abs(W[i][j].grad - sum(Xf[b][i] * dY[b][j] for b in range(batch))))
    for j in range(n_out):
        affine = max(affine, abs(B[j].grad - sum(dY[b][j] for b in range(batch))))
    return Result(loss.data, max(diffs), dscore, affine, len(diffs))


def main(argv: list[str] | None = None) -> int:
    """Run the check and print its findings."""
    p = parser("gradient_check", DESCRIPTION)
    args = p.parse_args(argv)
    batch, n_in, n_out = (8, 10, 6) if args.full else (3, 4, 5)
    r = run(batch, n_in, n_out, seed=args.seed)
    print(f"affine layer Y = X W + B with X {batch}x{n_in}, W {n_in}x{n_out}; softmax; cross-entropy")
    print(f"loss = {r.loss:.12g}")
    print(f"backprop vs central differences (h = 1e-5), {r.n_checked} entries:")
    print(f"  largest relative difference = {r.max_rel_diff:.3e}")
    print(f"d loss / d scores vs (softmax - onehot) / batch: largest difference {r.max_dscore_diff:.3e}")
    print(f"dX, dW, dB vs dY W^T, X^T dY, sum of dY:         largest difference {r.max_affine_diff:.3e}")
    ok = r.max_rel_diff < 1e-6
    print("gradient check", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
