"""Regenerate the pictures in docs/images/ from code.

    python scripts/make_pictures.py            # needs a renderer: pip install "microgrannd[render]"
    python scripts/make_pictures.py --png      # also write PNG copies (for looking at them)

Every SVG in docs/images/ is this script's output, and the plots (PNG) are
scripts/make_plots.py's; edit the scripts, not the pictures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import microgrannd as mg  # noqa: E402
from microgrannd import Value  # noqa: E402
from microgrannd.draw import Drawing, draw  # noqa: E402

IMAGES = ROOT / "docs" / "images"


def neuron() -> Drawing:
    """The overview's first example: y = sigmoid(w * x + b) after backward, w and b as parameters."""
    x, w, b = Value(0.5, "x"), Value(-1.5, "w"), Value(0.25, "b")
    y = mg.sigmoid(w * x + b)
    y.label = "y"
    y.backward()
    return draw(y, params=[w, b])


def sigmoid() -> Drawing:
    """The four primitive nodes of sigmoid, in a cluster, after backward (the sigmoid example, x = -1)."""
    x = Value(-1.0, "x")
    y = mg.sigmoid(x)
    y.label = "y"
    y.backward()
    return draw(y, legend=True)


def sigmoid_backward() -> Drawing:
    """The backward view of sigmoid at x = -1 with upstream gradient 3 (the sigmoid example)."""
    x = Value(-1.0, "x")
    y = mg.sigmoid(x)
    y.label = "y"
    return draw(y, backward=True, upstream=3.0)


def sigmoid_collapsed() -> Drawing:
    """A neuron whose sigmoid is collapsed to one node, in the backward view."""
    x, w, b = Value(0.5, "x"), Value(-1.5, "w"), Value(0.25, "b")
    y = mg.sigmoid(x * w + b)
    y.label = "y"
    return draw(y, backward=True, collapse=True, params=[w, b])


def shopping() -> Drawing:
    """The shopping example: 2 apples at 100 each, tax 1.1, with gradients."""
    apple, count, tax = Value(100.0, "apple"), Value(2.0, "count"), Value(1.1, "tax")
    price = apple * count * tax
    price.label = "price"
    price.backward()
    return draw(price, fmt=".6g")


def shopping_oranges() -> Drawing:
    """The shopping example, second part: plus 3 oranges at 150, with gradients."""
    apple, apples = Value(100.0, "apple"), Value(2.0, "apples")
    orange, oranges = Value(150.0, "orange"), Value(3.0, "oranges")
    tax = Value(1.1, "tax")
    price = (apple * apples + orange * oranges) * tax
    price.label = "price"
    price.backward()
    return draw(price, fmt=".6g")


def network_layers() -> Drawing:
    """micrograd's demo network MLP(2, [16, 16, 1]) on one input, hinge loss plus L2, collapsed to its layers."""
    from microgrannd import nn

    model = nn.MLP(2, [16, 16, 1], rng=0)
    loss = nn.hinge(model([Value(0.5, "x1"), Value(-1.0, "x2")]), 1) + nn.l2(model.parameters(), 1e-4)
    loss.label = "loss"
    loss.backward()
    return draw(loss, collapse=["Layer", "l2"])


PICTURES: dict[str, Callable[[], Drawing]] = {
    "neuron": neuron,
    "sigmoid": sigmoid,
    "sigmoid_backward": sigmoid_backward,
    "sigmoid_collapsed": sigmoid_collapsed,
    "shopping": shopping,
    "shopping_oranges": shopping_oranges,
    "network_layers": network_layers,
}


def write_all(folder: Path, png: bool = False) -> list[Path]:
    """Render every picture of :data:`PICTURES` into ``folder`` as SVG (and PNG); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, make in PICTURES.items():
        picture = make()
        written.append(picture.render(folder / f"{name}.svg"))
        if png:
            written.append(picture.render(folder / f"{name}.png"))
    return written


def main() -> None:
    """Write every picture as SVG (and PNG with --png) into docs/images/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", action="store_true", help="also write PNG copies next to the SVGs")
    args = parser.parse_args()
    for path in write_all(IMAGES, png=args.png):
        print("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
