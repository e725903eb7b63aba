"""The README's first command runs demos/tour.py: it must run and show each step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_tour_runs_and_shows_every_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("tour", ROOT / "demos" / "tour.py")
    assert spec is not None and spec.loader is not None
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    assert tour.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for step in ("1. Build", "2. Backpropagate", "3. Check", "4. See the graph", "5. Train"):
        assert step in out
    assert "dy/dx = -0.352506" in out and "check_grad passed" in out
    assert "in sigmoid#" in out  # the text tree marks the composite
    outputs = [float(v) for v in out.split("outputs for [0,0] [0,1] [1,0] [1,1]:")[1].split()[:4]]
    assert [round(o) for o in outputs] == [0, 1, 1, 0]  # XOR learned
    assert (tmp_path / "neuron.svg").is_file() or "not drawn" in out
