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
    mlp_points=10,  # the compiled engine compiles a graph of this batch once per worker
)


def test_quick_run_for_microgrannd_compiled_and_floor() -> None:
    results, missing = bench.run(TINY, ["microgrannd", "compiled", "floor"], modes=("on", "off"))
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
        assert engine in ("microgrannd", "floor") or (engine, workload) == ("compiled", "mlp_step")
        assert row.error == "", (workload, variant, engine, row.error)
        if workload == "memory":
            assert row.extra["traced_per_node"] > 0
        else:
            assert row.median is not None and row.median > 0
    mlp = results.get("mlp_step", "gc on", "microgrannd")
    assert set(mlp.phases) == {"build", "zero_grad", "backward", "update", "free"}
    text = bench.table(results)
    assert "mlp_step" in text and "microgrannd" in text
    for variant in ("gc on", "gc off"):
        row = results.get("mlp_step", variant, "compiled")
        assert set(row.phases) == {"zero_grad", "fwd+bwd", "update"}
        assert row.extra["method"] == "codegen" and row.extra["compile_seconds"] > 0
        summary = bench.compiled_summary(results, variant, "compiled")
        assert summary["per_floor"] == row.median / results.get("mlp_step", variant, "floor").median
    assert "compile " in text and "paid back after" in text
    out = bench.to_json(results, missing, TINY)
    assert set(out["compiled"]["compiled"]) == {"gc on", "gc off"}
    assert any(line.startswith("mlp_step compiled gc on:") for line in out["targets"])


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


class TwiceCompiled(bench.CompiledMlp):
    """The same bug, compiled: the compiled backward run twice doubles the gradients."""

    name = "compiled-twice"

    def run(self) -> float:
        self.compiled.backward(self.xs, self.ys)
        return float(self.compiled.backward(self.xs, self.ys))


class StaleCompiled(bench.CompiledMlp):
    """A stale graph: replays the inputs it was traced with instead of the step's data."""

    name = "compiled-stale"

    def run(self) -> float:
        return float(self.compiled.backward(self.trace_xs, self.trace_ys))


def test_a_wrong_compiled_engine_is_reported_not_timed() -> None:
    results = bench.Results()
    runners = [bench.CompiledMlp(), TwiceCompiled(), StaleCompiled()]
    bench.bench_mlp(results, runners, ("on",), blocks=1, steps=1, points=6)
    assert results.get("mlp_step", "gc on", "compiled").median is not None
    for name in ("compiled-twice", "compiled-stale"):
        row = results.get("mlp_step", "gc on", name)
        assert row.error.startswith("WRONG RESULT"), row.error
        assert row.median is None and row.samples == [] and row.extra == {}
