"""Digits: 5x5 images of 1 to 5, 25-20-20-20-5 ReLU, softmax cross-entropy, noisy variants."""

from __future__ import annotations

import itertools
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _demolib import Progress, output_dir, parser, pyplot, relu_mlp_on_floats, save

from microgrannd import nn

DESCRIPTION = __doc__.splitlines()[0]
ROWS = {
    1: "01100 00100 00100 00100 01110",
    2: "11110 00001 01110 10000 11111",
    3: "11110 00001 01110 00001 11110",
    4: "00010 00110 01010 11111 00010",
    5: "11111 10000 11110 00001 11110",
}
DIGITS = [[float(c) for c in ROWS[d].replace(" ", "")] for d in sorted(ROWS)]  # index i is digit i + 1
SIZES = [20, 20, 20, 5]


@dataclass
class Result:
    """A trained network and how it did."""

    model: nn.MLP
    losses: list[float]
    train_correct: int
    one_flip: float  # accuracy over every one-pixel flip of every digit
    two_flips: float  # accuracy over every two-pixel flip of every digit
    epochs_to_fit: int | None  # first epoch after which all five training digits were right


def predict(model: nn.MLP, x: list[float]) -> int:
    """The predicted class index, computed on plain floats (no graph)."""
    h = relu_mlp_on_floats(model, x)
    return max(range(len(h)), key=h.__getitem__)


def flipped(x: list[float], pixels: tuple[int, ...]) -> list[float]:
    """``x`` with the given pixels inverted."""
    y = list(x)
    for p in pixels:
        y[p] = 1.0 - y[p]
    return y


def noisy_accuracy(model: nn.MLP, n_flips: int) -> float:
    """Accuracy over every way of flipping ``n_flips`` pixels of each digit."""
    right = total = 0
    for label, x in enumerate(DIGITS):
        for pixels in itertools.combinations(range(25), n_flips):
            right += predict(model, flipped(x, pixels)) == label
            total += 1
    return right / total


def train(
    epochs: int,
    lr: float = 0.01,
    dropout: float = 0.0,
    init: str = "fan_in",
    seed: int = 0,
    progress: Any = None,
    momentum: float = 0.0,
    adam: bool = False,
) -> Result:
    """Train sample by sample (shuffled each epoch) with SGD (or Adam), then evaluate."""
    rng = random.Random(seed)
    model = nn.MLP(25, SIZES, "relu", init=init, rng=rng, dropout=dropout)
    opt: nn.Optimizer = (
        nn.Adam(model.parameters(), lr=lr) if adam else nn.SGD(model.parameters(), lr=lr, momentum=momentum)
    )
    losses: list[float] = []
    fit_at = None
    order = list(range(len(DIGITS)))
    for epoch in range(epochs):
        model.train()
        rng.shuffle(order)
        total = 0.0
        for i in order:
            loss = nn.cross_entropy(model(DIGITS[i]), i)  # type: ignore[arg-type]
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.data
        losses.append(total / len(order))
        if fit_at is None and all(predict(model, x) == i for i, x in enumerate(DIGITS)):
            fit_at = epoch + 1
        if progress is not None:
            progress(epoch + 1, losses[-1])
    model.eval()
    correct = sum(predict(model, x) == i for i, x in enumerate(DIGITS))
    return Result(model, losses, correct, noisy_accuracy(model, 1), noisy_accuracy(model, 2), fit_at)


def picture(res: Result, out: Path, plt: Any, seed: int) -> None:
    """The five digits with predictions, and a row of noisy variants with theirs."""
    rng = random.Random(seed)
    fig, axes = plt.subplots(3, 5, figsize=(7.5, 5))
    for label, x in enumerate(DIGITS):
        samples = [x, flipped(x, (rng.randrange(25),)), flipped(x, tuple(rng.sample(range(25), 2)))]
        for row, img in enumerate(samples):
            ax = axes[row][label]
            ax.imshow([img[r * 5 : r * 5 + 5] for r in range(5)], cmap="Greys", vmin=0, vmax=1)
            guess = predict(res.model, img) + 1
            ax.set_title(f"→ {guess}", color="green" if guess == label + 1 else "red")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][label].set_ylabel("")
    for row, name in enumerate(["training", "1 flipped", "2 flipped"]):
        axes[row][0].set_ylabel(name)
    fig.suptitle("5x5 digits and the network's predictions")
    save(fig, out / "digits_predictions.png")


def report(name: str, r: Result) -> None:
    """Print one network's results."""
    fit = f"all five first right at epoch {r.epochs_to_fit}" if r.epochs_to_fit else "never all five right"
    print(
        f"  {name:<16} training digits {r.train_correct}/5 ({fit}), "
        f"loss {r.losses[-1]:.1e}; 1 flip {r.one_flip:.3f} (of 125), 2 flips {r.two_flips:.3f} (of 1500)"
    )


def main(argv: list[str] | None = None) -> int:
    """Train with the tutorial's init and the default one (and dropout if asked); evaluate; draw."""
    p = parser("digits", DESCRIPTION)
    p.add_argument("--epochs", type=int, help="training epochs (default 150; 1000 with --full)")
    p.add_argument("--dropout", type=float, default=0.0, help="also train with this dropout ratio (e.g. 0.2)")
    args = p.parse_args(argv)
    epochs = args.epochs or (1000 if args.full else 150)
    print("25 -> 20 -> 20 -> 20 -> 5, ReLU, softmax cross-entropy, SGD lr 0.003 momentum 0.9, sample by")
    print(f"sample, {epochs} epochs; noisy variants: every 1- and 2-pixel flip of each digit")
    runs = [("uniform [-1,1]", "uniform", 0.0), ("fan_in", "fan_in", 0.0)]
    if args.dropout > 0:
        runs += [(f"uniform+drop{args.dropout:g}", "uniform", args.dropout)]
        runs += [(f"fan_in+drop{args.dropout:g}", "fan_in", args.dropout)]
    results = []
    with Progress(epochs * len(runs), "training") as bar:
        for k, (name, init, p_drop) in enumerate(runs):

            def tick(e: int, loss: float, k: int = k, name: str = name) -> None:
                bar.update(k * epochs + e, f"{name} loss {loss:.3g}")

            results.append(
                train(epochs, 0.003, p_drop, init, args.seed, progress=tick, momentum=0.9)
            )
    for (name, _, _), r in zip(runs, results, strict=True):
        report(name, r)
    print("uniform [-1,1] is the tutorial's init, fan_in (uniform in +-1/sqrt(inputs)) the default: it fits")
    print("more slowly here but is more robust to flipped pixels (compare other seeds with --seed).")
    plt = pyplot(not args.no_plots)
    if plt is not None:
        picture(results[1], output_dir(Path(args.out)), plt, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
