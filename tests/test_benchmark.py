"""Smoke test of demos/benchmark.py: it runs, and it refuses wrong results.

No timing is asserted here; timing targets live in the benchmark's own report.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PATH = Path(__file__).resolve().parent.parent / "demos" / "benchmark.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mg_benchmark", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mg_benchmark"] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


bench: Any = load()

TINY = bench.Config(
    blocks=1,
    steps=1,
    prim_repeats=1,
    prim_reps=1,
    wide_n=300,
    wide_repeats=1,
    chain_sizes=(10, 300),
    chain_repeats=1,
    chain_budget=10.0,
    memory_steps=500,
)


def test_quick_run_for_microgrannd_and_floor() -> None:
    results, missing = bench.run(TINY, ["microgrannd", "floor"], modes=("on", "off"))
    assert missing == {}
    workloads = {k[0] for k in results.rows}
    assert workloads == {
        "mlp_step",
        "primitive add",
        "primitive mul",
        "primitive pow",
        "primitive relu",
        "wide",
        "chain",
        "memory",
    }
    for (workload, variant, engine), row in results.rows.items():
        assert engine in ("microgrannd", "floor")
        assert row.error == "", (workload, variant, engine, row.error)
        if workload == "memory":
            assert row.extra["traced_per_node"] > 0
        else:
            assert row.median is not None and row.median > 0
    mlp = results.get("mlp_step", "gc on", "microgrannd")
    assert set(mlp.phases) == {"build", "zero_grad", "backward", "update", "free"}
    text = bench.table(results)
    assert "mlp_step" in text and "microgrannd" in text


def test_verify_catches_a_wrong_number() -> None:
    want = {"loss": 1.5, "grads": [0.25, -2.0]}
    bench.verify("e", "w", {"loss": 1.5, "grads": [0.25, -2.0]}, want)
    with pytest.raises(bench.ResultMismatch, match=r"grads\[1\]"):
        bench.verify("e", "w", {"loss": 1.5, "grads": [0.25, -2.0000001]}, want)
    with pytest.raises(bench.ResultMismatch, match="loss"):
        bench.verify("e", "w", {"loss": float("nan"), "grads": [0.25, -2.0]}, want)
    with pytest.raises(bench.ResultMismatch):
        bench.verify("e", "w", {"loss": 1.5, "grads": [0.25]}, want)


class TwiceBackward(bench.MicrogranndEngine):
    """A classic bug: backward run twice without zeroing doubles the leaves' grads."""

    name = "twice"

    def backward(self, root: Any) -> None:
        root.backward()
        root.backward()


def test_a_wrong_engine_is_reported_not_timed() -> None:
    results = bench.Results()
    bench.bench_mlp(results, [bench.GraphMlp(TwiceBackward())], ("on",), blocks=1, steps=1)
    bench.bench_wide(results, {"twice": TwiceBackward()}, False, ("on",), repeats=1, n=64)
    for workload in ("mlp_step", "wide"):
        row = results.get(workload, "gc on", "twice")
        assert row.error.startswith("WRONG RESULT"), row.error
        assert row.median is None and row.samples == []
    assert "WRONG RESULT" in bench.table(results)
