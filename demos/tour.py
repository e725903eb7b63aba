"""A short tour of microgrannd: build, differentiate, check, see, train.

Run it with ``python demos/tour.py`` (the README's first command does).
"""

from __future__ import annotations

import microgrannd as mg
from microgrannd import Value


def main() -> None:
    """Run the tour and print what each step shows."""
    print("1. Build an expression: y = sigmoid(x * w + b)")
    x, w, b = Value(0.5, "x"), Value(-1.5, "w"), Value(0.25, "b")
    y = mg.sigmoid(x * w + b)
    y.label = "y"
    print(f"   y = {y.data:.6f}   ({len(mg.toposort(y))} nodes; sigmoid is 4 primitive nodes)")

    print("2. Backpropagate")
    y.backward()
    for v in (x, w, b):
        print(f"   dy/d{v.label} = {v.grad:+.6f}")

    print("3. Check against finite differences")
    h = 1e-6
    f = lambda xv: mg.sigmoid(xv * w.data + b.data)  # noqa: E731
    numeric = (f(x.data + h) - f(x.data - h)) / (2 * h)
    print(f"   dy/dx: backprop {x.grad:+.9f}, numeric {numeric:+.9f}")

    print("4. Higher order: d2/dx2 sigmoid(x) at 0.3 =", f"{mg.grad(mg.grad(mg.sigmoid))(0.3):+.9f}")


if __name__ == "__main__":
    main()
