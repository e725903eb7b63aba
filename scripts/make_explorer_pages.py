"""The tutorial's worked examples as explorer pages: python scripts/make_explorer_pages.py [FOLDER].

Writes one self-contained page per example into docs/explore/ (or FOLDER);
docs/tutorial.md links to each.  tests/test_explorer_pages.py checks that the
committed pages are what this script makes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import microgrannd as mg  # noqa: E402
from microgrannd import Value  # noqa: E402

PAGES = ROOT / "docs" / "explore"


def shopping() -> tuple[Value, float]:
    """Section 2: 2 apples at 100 each with 10% tax."""
    apple, count, tax = Value(100.0, "apple"), Value(2.0, "count"), Value(1.1, "tax")
    return apple * count * tax, 1.0


def shopping_oranges() -> tuple[Value, float]:
    """Sections 2 and 3: apples and oranges, an add node between the multiplies."""
    apple, apples = Value(100.0, "apple"), Value(2.0, "apples")
    orange, oranges = Value(150.0, "orange"), Value(3.0, "oranges")
    tax = Value(1.1, "tax")
    return (apple * apples + orange * oranges) * tax, 1.0


def relu() -> tuple[Value, float]:
    """Section 4: four ReLUs summed, an upstream gradient of 3 reaching each."""
    xs = [Value(x, f"x{i}") for i, x in enumerate([-1.0, 3.0, -7.2, 5.6])]
    return sum(x.relu() for x in xs), 3.0


def sigmoid() -> tuple[Value, float]:
    """Section 5: the sigmoid's four nodes at x = -1, upstream 3."""
    return mg.sigmoid(Value(-1.0, "x")), 3.0


def affine() -> tuple[Value, float]:
    """Section 6: L = sum of dY * (X W + B), whose gradient at Y is dY."""
    X = [[Value(1.0, "x00"), Value(2.0, "x01"), Value(-1.0, "x02")],
         [Value(0.5, "x10"), Value(0.0, "x11"), Value(3.0, "x12")]]
    W = [[Value(0.25, "w00"), Value(-2.0, "w01")],
         [Value(1.0, "w10"), Value(0.5, "w11")],
         [Value(-0.5, "w20"), Value(2.0, "w21")]]
    B = [Value(0.1, "b0"), Value(-0.1, "b1")]
    dY = [[1.0, -1.0], [2.0, 0.5]]
    Y = [[sum(X[i][k] * W[k][j] for k in range(3)) + B[j] for j in range(2)] for i in range(2)]
    return sum(dY[i][j] * Y[i][j] for i in range(2) for j in range(2)), 1.0


def softmax_cross_entropy() -> tuple[Value, float]:
    """Section 7: softmax and cross-entropy on one example, written with Values."""
    scores = [Value(0.3, "a0"), Value(2.9, "a1"), Value(4.0, "a2")]
    exps = [s.exp() for s in scores]
    total = sum(exps)
    probs = [e / total for e in exps]
    return -probs[2].log(), 1.0


EXAMPLES: dict[str, Callable[[], tuple[Value, float]]] = {
    "shopping": shopping,
    "shopping_oranges": shopping_oranges,
    "relu": relu,
    "sigmoid": sigmoid,
    "affine": affine,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def page(name: str) -> str:
    """The HTML of example ``name``'s page."""
    root, upstream = EXAMPLES[name]()
    return mg.explore(root, upstream=upstream).html()


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else PAGES
    folder.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        target = folder / f"{name}.html"
        target.write_text(page(name), encoding="utf-8")
        print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
