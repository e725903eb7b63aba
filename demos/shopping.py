"""Shopping with a computational graph: multiply and add nodes pass gradients back."""

from __future__ import annotations

import sys
from pathlib import Path

from _demolib import draw_graph, parser

from microgrannd import Value

DESCRIPTION = __doc__.splitlines()[0]


def apples(apple: float = 100, count: float = 2, tax: float = 1.1) -> dict[str, Value]:
    """Price of ``count`` apples with tax, backpropagated; returns the named nodes."""
    a, n, t = Value(apple, "apple"), Value(count, "apple count"), Value(tax, "tax")
    price = a * n * t
    price.label = "price"
    price.backward()
    return {"price": price, "apple": a, "apple count": n, "tax": t}


def apples_and_oranges(
    apple: float = 100, count: float = 2, orange: float = 150, ocount: float = 3, tax: float = 1.1
) -> dict[str, Value]:
    """Price of apples plus oranges with tax, backpropagated; returns the named nodes."""
    a, n = Value(apple, "apple"), Value(count, "apple count")
    o, m = Value(orange, "orange"), Value(ocount, "orange count")
    t = Value(tax, "tax")
    price = (a * n + o * m) * t
    price.label = "price"
    price.backward()
    return {"price": price, "apple": a, "apple count": n, "orange": o, "orange count": m, "tax": t}


def report(title: str, nodes: dict[str, Value]) -> None:
    """Print the price and every input's gradient with all its digits."""
    print(title)
    print(f"  price = {nodes['price'].data!r}")
    for name, v in nodes.items():
        if name != "price":
            print(f"  d price / d {name:<13} = {v.grad!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo: print both examples and draw their graphs."""
    args = parser("shopping", DESCRIPTION).parse_args(argv)
    one = apples()
    report("2 apples at 100, tax 1.1:  price = apple * count * tax", one)
    two = apples_and_oranges()
    report("plus 3 oranges at 150:     price = (apple * count + orange * count) * tax", two)
    print("A multiply node sends back the upstream gradient times the other input;")
    print("an add node sends it back unchanged (tax's gradient is the pre-tax sum).")
    if not args.no_plots:
        out = Path(args.out)
        draw_graph(one["price"], out / "apples.svg")
        draw_graph(two["price"], out / "apples_oranges.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
