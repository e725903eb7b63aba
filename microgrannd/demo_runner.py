"""List the demos and run one by name (``python -m microgrannd demo [NAME] [ARGS...]``).

The demos live in the ``demos/`` folder of a checkout, next to the package
(an editable install works too); a wheel does not ship them.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path

__all__ = ["demo_dir", "describe", "find_demos", "load", "main"]

ORDER = [
    "shopping", "relu_sigmoid", "gradient_check", "vanishing_gradients", "delta_rule_xor", "digits", "moons",
]


def demo_dir() -> Path | None:
    """The ``demos/`` folder next to the package, or None if there is none."""
    path = Path(__file__).resolve().parent.parent / "demos"
    return path if path.is_dir() else None


def describe(path: Path) -> str:
    """A demo's one-line description: the first line of its docstring (read without running it)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def find_demos(folder: Path) -> dict[str, Path]:
    """Demo name -> file, in the order of the worked examples, then by name (files starting with _ skipped)."""
    found = {p.stem: p for p in folder.glob("*.py") if not p.stem.startswith("_")}
    rank = {name: i for i, name in enumerate(ORDER)}
    return {n: found[n] for n in sorted(found, key=lambda n: (rank.get(n, len(ORDER)), n))}


def load(path: Path) -> object:
    """Import a demo file as a module (its folder goes on ``sys.path`` for its helpers)."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"microgrannd_demo_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    """With no arguments, list the demos; with a name, run that demo with the remaining arguments."""
    folder = demo_dir()
    if folder is None:
        print(
            "microgrannd: no demos/ folder next to the installed package. The demos ship with the source:\n"
            "clone the repository and run `pip install -e .[demos]` there (or `python demos/NAME.py`).",
            file=sys.stderr,
        )
        return 2
    demos = find_demos(folder)
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(f"demos in {folder} (run one: python -m microgrannd demo NAME [--full] [--help]):")
        width = max(map(len, demos), default=0)
        for name, path in demos.items():
            print(f"  {name:<{width}}  {describe(path)}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in demos:
        print(f"microgrannd: no demo named {name!r}; choose one of: {', '.join(demos)}", file=sys.stderr)
        return 2
    run = getattr(load(demos[name]), "main", None)
    if not callable(run):
        print(f"microgrannd: demo {name!r} has no main()", file=sys.stderr)
        return 2
    result = run(rest) if inspect.signature(run).parameters else run()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
