"""ReLU and sigmoid backward: the four-node sigmoid graph, and decomposed equals fused."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _demolib import draw_graph, parser

import microgrannd as mg
from microgrannd import Value

DESCRIPTION = __doc__.splitlines()[0]
X = [-1.0, 3.0, -7.2, 5.6]
UPSTREAM = 3.0


@dataclass
class Result:
    """Forward values and input gradients of each activation on ``x``."""

    x: list[float]
    relu_y: list[float]
    relu_dx: list[float]
    sigmoid_y: list[float]
    sigmoid_dx: list[float]
    fused_y: list[float]
    fused_dx: list[float]
    sigmoid_nodes: list[str]


def forward_backward(
    fn: Callable[[Value], Value], x: list[float], upstream: float
) -> tuple[list[float], list[float], Value]:
    """Apply ``fn`` to each entry, backpropagate ``upstream``; return outputs, input grads, last output."""
    ys, dxs = [], []
    y = Value(0.0)
    for xi in x:
        v = Value(xi, "x")
        y = fn(v)
        y.backward(upstream)
        ys.append(y.data)
        dxs.append(v.grad)
    return ys, dxs, y


def run(x: list[float] = X, upstream: float = UPSTREAM) -> Result:
    """Compute every vector the demo prints."""
    ry, rdx, _ = forward_backward(mg.relu, x, upstream)
    sy, sdx, last = forward_backward(mg.sigmoid, x, upstream)
    fy, fdx, _ = forward_backward(mg.sigmoid_fused, x, upstream)
    nodes = [v.op for v in mg.toposort(last) if v.op]
    return Result(list(x), ry, rdx, sy, sdx, fy, fdx, nodes)


def _fmt(xs: list[float]) -> str:
    return "[" + ", ".join(f"{v:.9g}" for v in xs) + "]"


def main(argv: list[str] | None = None) -> int:
    """Run the demo: print the vectors, check decomposed against fused, draw the sigmoid graph."""
    args = parser("relu_sigmoid", DESCRIPTION).parse_args(argv)
    r = run()
    print(f"x                     = {_fmt(r.x)}   upstream gradient {UPSTREAM:g}")
    print(f"relu(x)               = {_fmt(r.relu_y)}")
    print(f"d/dx (relu)           = {_fmt(r.relu_dx)}   (0 where x <= 0)")
    print(f"sigmoid(x)            = {_fmt(r.sigmoid_y)}")
    print(f"d/dx (4-node sigmoid) = {_fmt(r.sigmoid_dx)}")
    print(f"d/dx (fused sigmoid)  = {_fmt(r.fused_dx)}")
    print(f"sigmoid's nodes, from the input: {' -> '.join(r.sigmoid_nodes)}")
    print("backward, node by node with upstream g: reciprocal -g*y^2, add passes it on,")
    print("exp multiplies by e^-x, mul by -1 flips the sign: g*y^2*e^-x = g*y*(1-y)")
    worst = max(abs(a - b) for a, b in zip(r.sigmoid_dx, r.fused_dx, strict=True))
    print(f"largest |decomposed - fused| gradient: {worst:.3g}")
    if not args.no_plots:
        out = Path(args.out)
        x = Value(X[0], "x")
        y = mg.sigmoid(x)
        y.label = "y"
        draw_graph(y, out / "sigmoid_forward.svg")
        y.backward(UPSTREAM)
        draw_graph(y, out / "sigmoid_backward.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
