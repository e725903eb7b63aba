"""A short tour of microgrannd: build, differentiate, check, see, train.

Run it with ``python demos/tour.py`` (the README's first command does); the
picture goes to ``out/tour/`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import microgrannd as mg
from microgrannd import Value, nn
from microgrannd.testing import check_grad


def main(argv: list[str] | None = None) -> int:
    """Run the tour and print what each step shows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/tour", help="folder for the picture (default: %(default)s)")
    args = ap.parse_args(argv)

    print("1. Build an expression: y = sigmoid(w * x + b)")
    x, w, b = Value(0.5, "x"), Value(-1.5, "w"), Value(0.25, "b")
    y = mg.sigmoid(w * x + b)
    y.label = "y"
    print(f"   y = {y.data:.6f}   ({len(mg.toposort(y))} nodes; sigmoid is four primitive nodes)")

    print("2. Backpropagate")
    y.backward()
    for v in (x, w, b):
        print(f"   dy/d{v.label} = {v.grad:+.6f}")

    print("3. Check the gradients against finite differences")
    neuron = lambda x, w, b: mg.sigmoid(w * x + b)
    analytic = check_grad(neuron, [x.data, w.data, b.data])
    print("   check_grad passed: " + ", ".join(f"{g:+.6f}" for g in analytic))
    print(f"   and the second derivative in x: {mg.grad(mg.grad(neuron))(x.data, w.data, b.data):+.6f}")

    print("4. See the graph")
    print("   " + mg.tree(y).replace("\n", "\n   "))
    path = Path(args.out) / "neuron.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        print(f"   drawn: {mg.draw(y, params=[w, b], legend=True).render(path)}")
    except Exception as e:  # no renderer: the .dot file is written and the error says how to get one
        print(f"   (not drawn: {e})")

    print("5. Train a tiny network on XOR")
    X, T = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0, 1.0, 1.0, 0.0]
    model = nn.MLP(2, [4, 1], activation="tanh", rng=0)
    opt = nn.Adam(model.parameters(), lr=0.1)
    for step in range(151):
        loss = nn.binary_cross_entropy_with_logits([model(p) for p in X], T)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"   step {step:3d}  loss {loss.data:.4f}")
    outputs = [mg.sigmoid(model.forward(p)[0].data) for p in X]
    print("   outputs for [0,0] [0,1] [1,0] [1,1]: " + "  ".join(f"{o:.3f}" for o in outputs))
    print("Next: python -m microgrannd demo   (lists the demos)   and docs/index.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
