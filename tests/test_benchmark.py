"""Smoke test of the benchmark (``python -m benchmarks``): it runs, and it refuses wrong results.

No timing is asserted here; timing targets live in the benchmark's own report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmarks package sits in the checkout; it is not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import microgpt_workload, mlp, report, runner, workloads  # noqa: E402
from benchmarks.engines import ClosureFreeEngine, MicrogranndEngine  # noqa: E402
from benchmarks.measure import (  # noqa: E402
    Case,
    Config,
    FnSampler,
    ResultMismatch,
    Results,
    Task,
    Workload,
    run_sampler,
    verify,
)

TINY = Config(
    quick=True,
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
    results, missing = runner.run(TINY, ["microgrannd", "compiled", "floor"], modes=("on", "off"))
    assert missing == {}
    names = {k[0] for k in results.rows}
    assert names == {
        "mlp_step",
        "primitive add",
        "primitive mul",
        "primitive pow",
        "primitive relu",
        "wide",
        "chain",
        "memory",
        "microgpt_step",
    }
    for (workload, variant, engine), row in results.rows.items():
        assert engine in ("microgrannd", "floor") or (engine, workload) in {("compiled", "mlp_step"),
                                                                              ("compiled", "microgpt_step")}
        assert row.error == "", (workload, variant, engine, row.error)
        if workload == "memory":
            assert row.extra["traced_per_node"] > 0
        else:
            assert row.median is not None and row.median > 0
    mlp_row = results.get("mlp_step", "gc on", "microgrannd")
    assert set(mlp_row.phases) == {"build", "zero_grad", "backward", "update", "free"}
    text = report.table(results)
    assert "mlp_step" in text and "microgrannd" in text
    for variant in ("gc on", "gc off"):
        row = results.get("mlp_step", variant, "compiled")
        assert set(row.phases) == {"zero_grad", "fwd+bwd", "update"}
        assert row.extra["method"] == "codegen" and row.extra["compile_seconds"] > 0
        summary = report.compiled_summary(results, variant, "compiled")
        assert summary["per_floor"] == row.median / results.get("mlp_step", variant, "floor").median
    assert "compile " in text and "paid back after" in text
    out = report.to_json(results, missing, TINY)
    assert set(out["compiled"]["compiled"]) == {"gc on", "gc off"}
    assert set(out["compiled_microgpt_step"]["compiled"]) == {"gc on", "gc off"}
    gpt_row = results.get("microgpt_step", "gc on", "compiled")
    assert gpt_row.extra["compile_seconds"] != results.get("mlp_step", "gc on", "compiled").extra["compile_seconds"]
    assert f"compile {report.fmt_time(gpt_row.extra['compile_seconds'])}, paid back after" in text
    assert any(line.startswith("mlp_step compiled gc on:") for line in out["targets"])


def test_command_line_quick_smoke(tmp_path: Path) -> None:
    """``python -m benchmarks`` from another folder: the workers find the package, the JSON is written there."""
    out = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--engines", "microgrannd,floor",
           "--workloads", "wide", "--gc", "off", "--json", "out.json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wide              gc off" in proc.stdout
    assert out.read_text().count('"workload": "wide"') == 2


def test_microgpt_step_through_the_command_line(tmp_path: Path) -> None:
    """``--quick`` runs the small GPT on every engine that can express it; micrograd is said to have no row."""
    torch = importlib.util.find_spec("torch") is not None
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--workloads", "microgpt_step", "--gc", "off",
           "--engines", "microgrannd,compiled,compiled-tape,closure-free,micrograd,torch,floor", "--json", "out.json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[3]: line for line in proc.stdout.splitlines() if line.startswith("microgpt_step     gc off")}
    compiled = ("compiled", "compiled-tape")
    assert set(rows) == {"microgrannd", *compiled, "closure-free", "floor", *(["torch"] if torch else [])}
    for engine in ("microgrannd", "closure-free"):
        assert " build " in rows[engine] and " backward " in rows[engine] and " nodes, " in rows[engine]
    for engine in compiled:
        assert " fwd+bwd " in rows[engine] and "; compile " in rows[engine] and "paid back after" in rows[engine]
    assert "WRONG" not in proc.stdout
    assert "microgpt_step: no micrograd row (micrograd's Value has no log or exp)" in proc.stdout
    lines = proc.stdout.splitlines()
    target = next(line for line in lines if line.startswith("microgpt_step gc off:"))
    assert "faster than closure-free (target >= 2.5x)" in target
    assert ("torch's time" in target) == torch
    out = json.loads((tmp_path / "out.json").read_text())
    timed = [r for r in out["rows"] if r["workload"] == "microgpt_step"]
    assert len(timed) == len(rows) and all(r["error"] == "" and r["median"] > 0 for r in timed)
    assert out["absent"] == ["microgpt_step: no micrograd row (micrograd's Value has no log or exp)"]
    # the compiled rows: their own compilation, the names' lengths, a target line and an amortised estimate each
    names = (ROOT / "demos" / "data" / "names.txt").read_text().split()
    lengths = len({len(name) for name in names})  # every name fits the block: one trace per length
    by_engine = {r["engine"]: r for r in timed}
    peer = by_engine["closure-free"]["median"]
    for engine in compiled:
        row = by_engine[engine]
        assert row["extra"]["method"] == ("tape" if engine == "compiled-tape" else "codegen")
        assert row["extra"]["lengths"] == lengths and row["extra"]["compile_seconds"] > 0
        summary = out["compiled_microgpt_step"][engine]["gc off"]
        assert summary["closure_free_per"] == pytest.approx(peer / row["median"])
        a = summary["amortised"]
        assert a["compilations"] == lengths and a["steps"] == 1000
        assert a["seconds"] == pytest.approx(lengths * row["extra"]["compile_seconds"] + 1000 * row["median"])
        assert a["peer_per"] == pytest.approx(1000 * peer / a["seconds"])
        line = next(x for x in lines if x.startswith(f"microgpt_step {engine} gc off: "))
        assert "x faster than closure-free per step (target >= 2.5x): " in line
        assert any(x.startswith(f"microgpt_step {engine} gc off, amortised (an estimate") for x in lines)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown engine: nope"):
        runner.run(TINY, ["microgrannd", "nope"])
    with pytest.raises(ValueError, match="unknown workload: mlp"):
        runner.run(TINY, ["microgrannd"], ["mlp"])
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--workloads", "nope"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "unknown workload: nope" in proc.stderr


def test_verify_catches_a_wrong_number() -> None:
    want = {"loss": 1.5, "grads": [0.25, -2.0]}
    verify("e", "w", {"loss": 1.5, "grads": [0.25, -2.0]}, want)
    with pytest.raises(ResultMismatch, match=r"grads\[1\]"):
        verify("e", "w", {"loss": 1.5, "grads": [0.25, -2.0000001]}, want)
    with pytest.raises(ResultMismatch, match="loss"):
        verify("e", "w", {"loss": float("nan"), "grads": [0.25, -2.0]}, want)
    with pytest.raises(ResultMismatch):
        verify("e", "w", {"loss": 1.5, "grads": [0.25]}, want)


class TwiceBackward(MicrogranndEngine):
    """A classic bug: backward run twice without zeroing doubles the leaves' grads."""

    name = "twice"

    def backward(self, root: Any) -> None:
        root.backward()
        root.backward()


def test_a_wrong_engine_is_reported_not_timed() -> None:
    results = Results()
    for name, params in (("mlp_step", {"points": 100}), ("wide", {"n": 64})):
        workload = workloads.WORKLOADS[name]
        sampler = workload.sampler("twice", TwiceBackward(), params)
        row = results.row(name, "gc on", "twice")
        run_sampler(row, workload.reference(params), sampler, "on", warmup=1, samples=1)
        assert row.error.startswith("WRONG RESULT"), row.error
        assert row.median is None and row.samples == []
    assert "WRONG RESULT" in report.table(results)


class NudgedGrad(ClosureFreeEngine):
    """Every gradient off by one part in a million: beyond the tolerance, though it trains just as well."""

    name = "nudged"

    def grad(self, v: Any) -> float:
        return float(v.grad) * (1 + 1e-6)


def test_microgpt_step_refuses_a_wrong_gradient() -> None:
    """The workers' own path (``execute``): a wrong loss or gradient is reported, never timed."""
    task = workloads.WORKLOADS["microgpt_step"].cases(TINY)[0].task("microgpt_step", "on")
    row = runner.execute(task, "closure-free", ClosureFreeEngine()).get("microgpt_step", "gc on", "closure-free")
    assert row is not None and row.error == "" and len(row.samples) == task.samples and row.extra["nodes"] > 0
    for engine in (TwiceBackward(), NudgedGrad()):
        row = runner.execute(task, engine.name, engine).get("microgpt_step", "gc on", engine.name)
        assert row is not None and row.error.startswith("WRONG RESULT") and "grads[" in row.error, row.error
        assert row.samples == [] and row.extra == {}
    assert not workloads.WORKLOADS["microgpt_step"].takes_part("micrograd")


class TwiceCompiled(mlp.CompiledMlp):
    """The same bug, compiled: the compiled backward run twice doubles the gradients."""

    name = "compiled-twice"

    def run(self) -> float:
        self.compiled.backward(self.xs, self.ys)
        return float(self.compiled.backward(self.xs, self.ys))


class StaleCompiled(mlp.CompiledMlp):
    """A stale graph: replays the inputs it was traced with instead of the step's data."""

    name = "compiled-stale"

    def run(self) -> float:
        return float(self.compiled.backward(self.trace_xs, self.trace_ys))


def test_a_wrong_compiled_engine_is_reported_not_timed() -> None:
    results = Results()
    want = mlp.reference(6)
    for r in (mlp.CompiledMlp(), TwiceCompiled(), StaleCompiled()):
        run_sampler(results.row("mlp_step", "gc on", r.name), want, mlp.setup(r, 6), "on", warmup=1, samples=1)
    assert results.get("mlp_step", "gc on", "compiled").median is not None
    for name in ("compiled-twice", "compiled-stale"):
        row = results.get("mlp_step", "gc on", name)
        assert row.error.startswith("WRONG RESULT"), row.error
        assert row.median is None and row.samples == [] and row.extra == {}


class StaleWeightsGpt(microgpt_workload.CompiledTapeGpt):
    """A compiled step that replays the weights it was traced with instead of the step's."""

    def run(self) -> tuple[float, list[float]]:
        loss, grads = self.compiled(self.trace_flat, self.tokens)
        return loss, grads


class StaleTokensGpt(microgpt_workload.CompiledTapeGpt):
    """A compiled step that reads the name it was traced on (token ids frozen into the trace) instead of the step's."""

    def run(self) -> tuple[float, list[float]]:
        loss, grads = self.compiled(self.flat, self.trace_tokens)
        return loss, grads


def test_a_wrong_compiled_microgpt_step_is_reported_not_timed() -> None:
    params = workloads.WORKLOADS["microgpt_step"].cases(TINY)[0].params
    want = microgpt_workload.reference(params)
    results = Results()
    for name, cls in (("compiled-tape", microgpt_workload.CompiledTapeGpt), ("stale-weights", StaleWeightsGpt),
                      ("stale-tokens", StaleTokensGpt)):
        run_sampler(results.row("microgpt_step", "gc on", name), want, cls(params), "on", warmup=1, samples=1)
    good = results.get("microgpt_step", "gc on", "compiled-tape")
    assert good.median is not None and good.extra["method"] == "tape" and good.extra["nodes"] > 0
    for name in ("stale-weights", "stale-tokens"):
        row = results.get("microgpt_step", "gc on", name)
        assert row.error.startswith("WRONG RESULT"), row.error
        assert row.median is None and row.samples == [] and row.extra == {}


def test_the_compiled_microgpt_summary_and_target_lines() -> None:
    """The report's figures for a compiled microgpt_step row, from made-up times: its own row's, not mlp_step's."""
    results = Results()
    times = {"compiled": 0.01, "closure-free": 0.1, "microgrannd": 0.09, "floor": 0.005}
    for engine, t in times.items():
        results.row("microgpt_step", "gc on", engine).add(t)
    results.row("microgpt_step", "gc on", "compiled").extra = {"compile_seconds": 2.0, "nodes": 1000, "lengths": 10}
    results.row("mlp_step", "gc on", "compiled").add(0.001)
    results.row("mlp_step", "gc on", "compiled").extra = {"compile_seconds": 7.0, "nodes": 5}
    s = report.compiled_summary(results, "gc on", "compiled", "microgpt_step")
    assert s is not None and s["closure_free_per"] == pytest.approx(10.0) and s["per_floor"] == pytest.approx(2.0)
    assert s["amortised_after_steps"] == 25  # 2 s saved at 0.08 s a step
    assert s["amortised"] == pytest.approx(
        {"steps": 1000, "compilations": 10, "seconds": 30.0, "peer_seconds": 100.0, "peer_per": 100 / 30})
    lines = report.targets(results)
    assert ("microgpt_step compiled gc on: 10.0x faster than closure-free per step (target >= 2.5x): met; "
            "compiled in 2.00 s per name length (1,000 nodes), paid back against microgrannd after 25 steps "
            "of that length") in lines
    assert any(line.startswith("microgpt_step compiled gc on, amortised") and line.endswith(
        "take 30.0 s against closure-free's 100.0 s: 3.33x") for line in lines)
    assert "compile 2.000 s, paid back after 25 steps" in report.table(results)
    results.row("microgpt_step", "gc on", "compiled").samples = [0.05]  # 2x: the target is not met
    assert any(line.startswith("microgpt_step compiled gc on: 2.0x") and "NOT met" in line
               for line in report.targets(results))


def test_a_workload_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new workload, given as one Workload, runs in the workers' place through ``execute``."""

    def square(engine: Any, x: float) -> Any:
        leaf = engine.leaf(x)
        root = leaf * leaf
        engine.backward(root)
        return 1e-6, {}, {"y": engine.value(root), "dx": engine.grad(leaf)}

    entry = Workload(
        "square",
        "x * x",
        reference=lambda p: {"y": p["x"] ** 2, "dx": 2 * p["x"]},
        graph=lambda engine, p: FnSampler(lambda: square(engine, p["x"])),
        cases=lambda c: [Case("square", {"x": 3.0}, repeats=2)],
    )
    monkeypatch.setitem(workloads.WORKLOADS, "square", entry)
    assert entry.takes_part("microgrannd") and not entry.takes_part("floor") and not entry.takes_part("compiled")
    task = Case("square", {"x": 3.0}, repeats=1, samples=3).task("square", "off")
    row = runner.execute(task, "microgrannd", MicrogranndEngine()).get("square", "gc off", "microgrannd")
    assert row is not None and row.samples == [1e-6] * 3 and row.error == ""
    wrong = Task("square", "square", "gc on", "on", {"x": 3.0})
    monkeypatch.setitem(workloads.WORKLOADS, "square", Workload(
        "square", "x * x", reference=lambda p: {"y": 9.0, "dx": 5.0}, graph=entry.graph, cases=entry.cases
    ))
    row = runner.execute(wrong, "microgrannd", MicrogranndEngine()).get("square", "gc on", "microgrannd")
    assert row is not None and row.error.startswith("WRONG RESULT") and "dx" in row.error


def test_extra_workloads_load_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("extra_workload_for_test")
    module.good = lambda: workloads.WIDE  # type: ignore[attr-defined]
    module.bad = lambda: "wide"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert workloads.load_extra("extra_workload_for_test:good") is workloads.WIDE
    with pytest.raises(TypeError, match="returned str, not a Workload"):
        workloads.load_extra("extra_workload_for_test:bad")


def test_the_compile_benchmark_checks_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import compile_bench

    compile_bench.main(["--repeats", "1", "--slow-steps", "1", "--points", "6"])
    out = capsys.readouterr().out
    assert "bit for bit" in out and "6 moons" in out
    for name in ("floor", "floor-dense", "compiled", "compiled-tape", "microgrannd", "micrograd"):
        assert f"\n{name:<18}" in out
    assert out.count("paid back after") == 2


def test_a_missing_engine_is_reported_and_the_others_run() -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed here")
    results, missing = runner.run(TINY, ["torch", "floor"], ["wide"], modes=("on",))
    assert missing == {"torch": "not importable (No module named 'torch')"}
    assert {k[2] for k in results.rows} == {"floor"}
    assert results.get("wide", "gc on", "floor").median is not None
