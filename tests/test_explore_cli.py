"""The command line's explore and step subcommands."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import microgrannd as mg
from microgrannd.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_step_prints_the_sigmoid_walkthrough(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "step", "sigmoid(x)", "x=-1", "--upstream", "3")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 4 + 1 + 4  # forward through sigmoid's four nodes, the seed, four backward edges
    assert lines[4] == "seed: " + lines[3].split(" = ")[0].split(": ")[1] + ".grad = upstream = 3"
    backward = "\n".join(lines[5:])
    for number in ("-0.07233", "-0.217", "2.718", "-0.5898"):
        assert number in backward
    s = 1.0 / (1.0 + math.e)
    assert lines[-1].endswith(f"x.grad = {format(3 * s * (1 - s), '.4g')}")


def test_step_agrees_with_the_explorer(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = mg.Value(0.5, "x"), mg.Value(2.0, "y")
    expected = mg.explore(mg.sigmoid(x) * y, upstream=3.0, collapse=False).steps()
    status, out, _ = run(capsys, "step", "sigmoid(x) * y", "x=0.5", "y=2", "--upstream", "3", "--expand")
    assert status == 0 and out.splitlines() == expected


def test_step_collapse_options(capsys: pytest.CaptureFixture[str]) -> None:
    _, collapsed, _ = run(capsys, "step", "sigmoid(x) * y", "x=0.5", "y=2", "--collapse")
    _, only, _ = run(capsys, "step", "sigmoid(x) * y", "x=0.5", "y=2", "--collapse-only", "sigmoid")
    _, expanded, _ = run(capsys, "step", "sigmoid(x) * y", "x=0.5", "y=2", "--expand")
    assert collapsed == only
    assert "sigmoid[0] -> x" in collapsed and "sigmoid[0]" not in expanded
    assert len(expanded.splitlines()) > len(collapsed.splitlines())


def test_step_running_sum_for_a_variable_used_twice(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "step", "x * x + x", "x=3", "--upstream", "2")
    assert status == 0
    last = out.splitlines()[-1]
    assert re.search(r"x\.grad = \S+ \+ \S+ \+ \S+ = 14$", last), last  # 2 * (2x + 1) at x = 3


def test_explore_writes_the_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "graph.html"
    status, out, err = run(capsys, "explore", "sigmoid(x) * y", "x=0.5", "y=2", "-o", str(target), "--upstream", "3")
    assert status == 0 and err == ""
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and 'id="mg-data"' in page
    assert f"wrote {target}" in out and "value = " in out


def test_explore_after_double_dash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "neg.html"
    status, _, err = run(capsys, "explore", "--", "-x * y", "x=1", "y=3", "-o", str(target))
    assert status == 0, err
    assert target.is_file()
    status, out, _ = run(capsys, "step", "--", "-x * y", "x=1", "y=3")
    assert status == 0 and out.splitlines()[-1].endswith("x.grad = -3")


@pytest.mark.parametrize("argv", [
    ["explore", "x +", "x=1", "-o", "g.html"],
    ["explore", "x", "x=1", "-o", "g.svg"],
    ["explore", "x", "x=1", "-o", "folder/"],
    ["explore", "y", "x=1", "-o", "g.html"],
    ["step", "x * x", "x=1", "--max-nodes", "0"],
    ["step", "x * x", "x=1", "--upstream", "inf"],
    ["step", "x * x", "x=nan"],
    ["step", "log(x)", "x=-1"],
    ["step", "x", "x=1", "--collapse", "--expand"],
    ["explore", "x", "x=1"],  # no -o
])
def test_refused_input_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                argv: list[str]) -> None:
    argv = [str(tmp_path / a) if a.startswith(("g.", "folder")) else a for a in argv]
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_the_node_limit_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "step", "sigmoid(x) * x * x", "x=1", "--max-nodes", "5")
    assert status == 2 and out == ""
    assert "--max-nodes" in err and "max_nodes=" not in err and err.count("\n") == 1


def test_an_unwritable_output_is_status_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "explore", "x", "x=1", "-o", str(tmp_path / "missing" / "g.html"))
    assert status == 1 and err.startswith("error: cannot write")


def test_python_dash_m_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "microgrannd", "step", "--help"], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert "--upstream" in done.stdout and "--collapse" in done.stdout
    done = subprocess.run([sys.executable, "-m", "microgrannd", "--help"], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert "explore" in done.stdout and "step" in done.stdout
