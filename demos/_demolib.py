"""Shared helpers for the demos: arguments, output folder, optional plots, progress.

Not a demo itself (the runner lists only files without a leading underscore).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

PLOT_HINT = 'plots need matplotlib: pip install matplotlib (or, in a checkout, pip install ".[demos]")'


def parser(name: str, description: str, seed: int = 0) -> argparse.ArgumentParser:
    """An argument parser with the options every demo shares."""
    p = argparse.ArgumentParser(prog=f"demos/{name}.py", description=description)
    p.add_argument("--out", type=Path, default=Path("out", name), help="picture folder (default %(default)s)")
    p.add_argument("--full", action="store_true", help="run the full-length version")
    p.add_argument("--seed", type=int, default=seed, help="random seed (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="skip pictures")
    return p


def output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def pyplot(enabled: bool = True) -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or None (saying how to get it)."""
    if not enabled:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no pictures: {PLOT_HINT})")
        return None
    return plt


def save(fig: Any, path: Path) -> None:
    """Save a matplotlib figure, close it and say where it went."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"  wrote {path}")


def draw_graph(root: Any, path: Path) -> Path | None:
    """Render ``root``'s graph with ``microgrannd.draw`` to ``path`` (SVG) if drawing is available."""
    import microgrannd

    draw = getattr(microgrannd, "draw", None)
    if not callable(draw):
        print("  (graph drawing skipped: this microgrannd has no microgrannd.draw)")
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        graph = draw(root)
        graph.render(str(path))
    except Exception as e:  # a missing renderer must not stop the demo
        print(f"  (graph drawing skipped: {e})")
        return None
    print(f"  wrote {path}")
    return path


class Progress:
    """A one-line progress meter on stderr, refreshed at most five times a second."""

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, note: str = "") -> None:
        """Report ``done`` of ``total`` steps (with an optional short note)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        frac = done / self.total
        bar = "#" * int(20 * frac)
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        line = f"{self.label} [{bar:<20}] {done}/{self.total} {elapsed:5.1f}s eta {eta:4.0f}s {note}"
        sys.stderr.write(f"\r  {line}  ")
        sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def relu_mlp_on_floats(model: Any, x: list[float]) -> list[float]:
    """The outputs of an MLP with ReLU hidden layers and a linear last layer, on plain floats.

    No graph is built: fast enough for the many predictions of an evaluation
    or a decision-boundary grid.
    """
    h = x
    for i, layer in enumerate(model.layers):
        h = [
            sum((w.data * xi for w, xi in zip(n.w, h, strict=True)), n.b.data if n.b is not None else 0.0)
            for n in layer.neurons
        ]
        if i < len(model.layers) - 1:
            h = [max(v, 0.0) for v in h]
    return h
