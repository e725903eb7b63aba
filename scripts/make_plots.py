"""Regenerate the plotted pictures in docs/images/ by running the demos that draw them.

    python scripts/make_plots.py        # needs matplotlib: pip install "microgrannd[demos]"

Writes docs/images/vanishing_gradients.png: the gradient reaching each layer of
the 10-layer XOR network over training, one panel per activation.  It runs
demos/vanishing_gradients.py with its default settings (2000 steps, lr 0.05,
seed 8; about 20 s) and keeps the demo's own picture, so the docs show exactly
what the demo draws.  Graph pictures (SVG) come from scripts/make_pictures.py.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "demos"))

IMAGES = ROOT / "docs" / "images"


def vanishing_gradients_picture(dest: Path = IMAGES / "vanishing_gradients.png", demo_args: Sequence[str] = ()) -> Path:
    """Run the vanishing-gradients demo (at its defaults) and copy its per-layer gradient plot to ``dest``.

    ``demo_args`` go to the demo (the tests pass a short ``--steps``).
    """
    demo = importlib.import_module("vanishing_gradients")
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            demo.main(["--out", tmp, *demo_args])
        made = Path(tmp) / "gradients_per_layer.png"
        if not made.is_file():
            raise SystemExit(f"the demo drew no picture (is matplotlib installed?):\n{out.getvalue()}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, dest)
    return dest


PLOTS: dict[str, Callable[..., Path]] = {"vanishing_gradients.png": vanishing_gradients_picture}
"""Picture file name (in docs/images/) -> the function that makes it."""


def main() -> int:
    """Regenerate every plotted picture and say where each went."""
    for name, make in PLOTS.items():
        print(f"wrote {make(IMAGES / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
