"""The property tests must catch a broken engine.

Each case copies the package into a temporary folder, applies one textual
mutation to the engine (a bug we could plausibly write), and runs a chosen
subset of tests/test_properties.py in a subprocess with that copy first on
``sys.path``.  The run must fail, and fail by an assertion (a wrong
derivative), not by an import or syntax error.  An unmutated copy must pass,
so that the failures are the mutation's doing.

All runs use the ``mutation`` hypothesis profile (derandomized, no example
database) and go in parallel; together they take a few seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The properties the mutants run against (test ids within test_properties.py).
PROPERTIES = [
    "test_primitive_first_derivative",
    "test_trees_against_check_grad",
    "test_dags_against_check_grad",
    "test_x_plus_x_plus_x_has_gradient_exactly_three",
    "test_reused_interior_node_accumulates",
]

_BFS_ORDER = '''def _order(root: Any, leaves: list[Any] | None = None) -> list[Any]:
    """MUTANT: breadth-first from the root, reversed: wrong when a node is reached at two depths."""
    order: list[Any] = [root]
    seen = {root}
    for v in order:
        for p in v.parents:
            if p not in seen:
                seen.add(p)
                order.append(p)
    if leaves is not None:
        leaves.extend(v for v in order if not v.parents and v.requires_grad)
        order = [v for v in order if v.parents]
    return order[::-1]


def toposort('''

# name -> (file, regex, replacement, count): every match is replaced, and there
# must be exactly `count` of them (so a change to the engine's text is noticed).
MUTATIONS: dict[str, tuple[str, str, str, int]] = {
    "reciprocal rule has the wrong sign": (
        "ops.py", re.escape("vjp=lambda g, a, out: (-(g * out) * out,)"), "vjp=lambda g, a, out: ((g * out) * out,)", 1,
    ),
    "backward assigns instead of accumulating": (
        "walk.py", r"\b([abp])\.grad \+= (d[ab]?)\b", r"\1.grad = \2", 4,
    ),
    "gradients() assigns instead of accumulating": (
        "walk.py", re.escape("grads[p] = grads[p] + c if p in grads else c"), "grads[p] = c", 1,
    ),
    "the walk gives a wrong order (breadth-first)": (
        "walk.py", r"def _order\(root: Any.*?\ndef toposort\(", _BFS_ORDER, 1,
    ),
    "backward visits nodes parents first": (
        "walk.py", re.escape("for v in reversed(order):"), "for v in order:", 2,
    ),
}


def _mutant(tmp: Path, mutation: tuple[str, str, str, int] | None) -> Path:
    """A copy of the package and the property tests, with ``mutation`` applied."""
    shutil.copytree(ROOT / "microgrannd", tmp / "microgrannd", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "tests").mkdir()
    for name in ("conftest.py", "test_properties.py"):
        shutil.copy(ROOT / "tests" / name, tmp / "tests" / name)
    if mutation is not None:
        filename, pattern, replacement, count = mutation
        path = tmp / "microgrannd" / filename
        text, n = re.subn(pattern, replacement, path.read_text(), flags=re.DOTALL)
        assert n == count, f"mutation of {filename} matched {n} times, expected {count}"
        path.write_text(text)
    return tmp


def _start(folder: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(folder), HYPOTHESIS_PROFILE="mutation", PYTHONDONTWRITEBYTECODE="1")
    args = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "-rf", "--tb=line"]
    args += ["tests/test_properties.py", "-k", " or ".join(PROPERTIES)]
    code = (
        "import sys, microgrannd, pytest\n"
        f"assert microgrannd.__file__.startswith({str(folder)!r}), microgrannd.__file__\n"
        f"sys.exit(pytest.main({args!r}))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, tuple[int, str]]:
    """Run the properties on the unmutated copy and on every mutant, in parallel."""
    procs = {}
    for key in [None, *MUTATIONS]:
        folder = tmp_path_factory.mktemp("mutant")
        procs[key] = _start(_mutant(folder, MUTATIONS[key] if key else None))
    results = {}
    for key, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        results[key] = (proc.returncode, out)
    return results


def test_unmutated_copy_passes(runs):
    code, out = runs[None]
    assert code == 0, out


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutant_is_caught(runs, mutation):
    code, out = runs[mutation]
    assert code == 1, f"expected failing tests (exit 1), got exit {code}:\n{out}"
    failed = re.findall(r"^FAILED tests/test_properties.py::(\S+)", out, flags=re.MULTILINE)
    assert failed, out
    assert re.search(r"(AssertionError|GradcheckError)", out), out
    print(f"{mutation}: caught by {', '.join(failed)}")
