"""demos/microgpt.py (a scalar GPT) and its benchmark workload on the closure-free peer engine."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import demo_runner
from microgrannd.testing import check_grad

ROOT = Path(__file__).resolve().parent.parent
gpt: Any = demo_runner.load(ROOT / "demos" / "microgpt.py")

TINY = gpt.Config(n_embd=4, n_head=2, block_size=4)


def test_names_data_is_lowercase_unique_names() -> None:
    names = gpt.load_names()
    assert len(names) > 5000
    assert len(set(names)) == len(names)
    assert all(n.isalpha() and n.islower() and n.isascii() for n in names)
    assert gpt.Vocab.of(names).size == 27  # a-z and BOS


def test_vocab_round_trip_with_bos_at_both_ends() -> None:
    vocab = gpt.Vocab.of(["bca", "ab"])
    assert vocab.chars == "abc"
    tokens = vocab.encode("cab")
    assert tokens == [3, 2, 0, 1, 3]
    assert vocab.decode(tokens) == "cab"


def test_short_run_learns_and_samples_names() -> None:
    result = gpt.run(20, seed=0, n_samples=5)
    losses = result.losses
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses)
    assert losses[0] == pytest.approx(math.log(27), abs=0.5)  # near a uniform guess at the start
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.2, (first, last)
    assert len(result.samples) == 5
    for name in result.samples:
        assert isinstance(name, str) and set(name) <= set(result.vocab.chars)
        assert len(name) <= gpt.Config().block_size


def test_runs_are_deterministic_given_the_seed() -> None:
    docs = ["anna", "bob", "carl", "dora"]
    a, b, c = (gpt.run(3, seed=s, n_samples=3, cfg=TINY, docs=docs) for s in (7, 7, 8))
    assert a.losses == b.losses and a.samples == b.samples
    assert a.losses != c.losses


def test_compiled_training_gives_the_losses_and_weights_of_uncompiled_training() -> None:
    """Same seed, same names: the compiled loss (a trace per name length, token ids as data) trains alike."""
    docs = ["a", "bo", "cal", "dorothy", "ed", "fay"]  # 3, 4, 5 tokens; dorothy is cut to block_size + 1 = 5
    plain = gpt.run(8, seed=5, n_samples=2, cfg=TINY, docs=docs)
    for method in ("tape", "codegen"):
        compiled = gpt.run(8, seed=5, n_samples=2, cfg=TINY, docs=docs, compile_method=method)
        assert compiled.losses == pytest.approx(plain.losses, rel=1e-12, abs=0)
        assert len(set(compiled.losses)) == 8  # eight different names' losses, not one replayed
        ours = [p.data for p in compiled.model.parameters()]
        theirs = [p.data for p in plain.model.parameters()]
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15) and ours != gpt.flatten(
            gpt.init_weights(TINY, plain.vocab.size, 5))
        info = compiled.compiled.cache_info()
        assert (info.misses, info.hits, info.maxsize) == (3, 5, TINY.block_size)
        assert compiled.compiled.method == method
    assert plain.compiled is None


def test_the_compiled_loss_reads_token_ids_and_weights_at_every_call() -> None:
    vocab = gpt.Vocab.of(["abc"])
    weights = gpt.init_weights(TINY, vocab.size, seed=1)
    loss = gpt.compile_loss(TINY, weights, "tape")
    flat = gpt.flatten(weights)
    for doc, bumped in (("ab", False), ("ca", False), ("ca", True), ("bcab", False)):
        if bumped:
            flat = [x * 1.5 for x in flat]
        value, grads = loss(flat, vocab.encode(doc))
        model = gpt.GPT.build(gpt.unflatten(flat, weights), TINY, mg.Value)
        want = model.loss(vocab.encode(doc))
        want.backward()
        assert value == pytest.approx(want.data, rel=1e-13)
        assert grads == pytest.approx([p.grad for p in model.parameters()], rel=1e-10, abs=1e-15)
    assert loss.cache_info().misses == 2  # "ab", "ca": one length; "bcab": another
    with pytest.raises(ValueError, match="numbers for"):
        gpt.unflatten(flat[:-1], weights)


def tiny_model(values: dict[tuple[str, int, int], Any]) -> Any:
    """The tiny GPT on Values; the weights at the keys of ``values`` are replaced by those."""
    vocab = gpt.Vocab.of(["abc"])
    weights = gpt.init_weights(TINY, vocab.size, seed=3)
    params = {k: [[values[k, i, j] if (k, i, j) in values else mg.Value(x) for j, x in enumerate(row)]
                  for i, row in enumerate(m)]
              for k, m in weights.items()}
    return gpt.GPT(params, TINY, mg.scope), vocab, weights


def test_gradients_agree_with_finite_differences() -> None:
    _, vocab, weights = tiny_model({})
    rng = random.Random(0)
    # a few weights of every matrix: embeddings, attention, MLP, head
    picked = [(k, rng.randrange(len(m)), rng.randrange(len(m[0]))) for k, m in weights.items() for _ in range(2)]
    picked = list(dict.fromkeys(picked))
    tokens = vocab.encode("cab")  # 4 positions: the whole block, every cache entry used

    def loss(*xs: Any) -> Any:
        model, _, _ = tiny_model(dict(zip(picked, xs, strict=True)))
        return model.loss(tokens)

    grads = check_grad(loss, [weights[k][i][j] for k, i, j in picked], extra_checks=False)
    assert len(grads) == len(picked)
    assert any(abs(g) > 1e-3 for g in grads)  # the check compared real gradients, not zeros


def test_model_parts_are_recorded_as_composites() -> None:
    model, vocab, _ = tiny_model({})
    loss = model.loss(vocab.encode("ab"))
    names = {s.name for v in mg.toposort(loss) if v.scope is not None for s in v.scope.path()}
    assert set(gpt.COLLAPSE) <= names


def test_drawing_of_one_position_collapses_the_parts(tmp_path: Path) -> None:
    model, vocab, _ = tiny_model({})
    root = gpt.position_graph(model, vocab, "cab", 1)
    assert root.grad == 1.0  # a backward pass ran
    drawing = mg.draw(root, collapse=gpt.COLLAPSE)
    # position 1 reads position 0's keys and values, so position 0's heads and what feeds them are drawn:
    # embedding, rmsnorm, rmsnorm, the heads; then position 1's own path to its loss
    position0 = 3 + TINY.n_head
    position1 = 3 + TINY.n_head + len(["projection", "rmsnorm", "mlp", "lm head", "softmax"])
    assert drawing.calls == position0 + position1
    path = tmp_path / "pos.dot"
    gpt.write_drawing(root, path)
    text = path.read_text()
    for part in gpt.COLLAPSE:
        assert part in text
    with pytest.raises(ValueError, match="outside"):
        gpt.position_graph(model, vocab, "cab", 4)


def test_main_short_run_prints_losses_and_samples(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert gpt.main(["--steps", "2", "--samples", "3", "--draw", str(tmp_path / "g.dot")]) == 0
    out = capsys.readouterr().out
    assert "4192 parameters" in out and "mean loss" in out and "samples" in out
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_main_compiled_prints_the_cache(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpt.main(["--steps", "3", "--samples", "2", "--compile"]) == 0
    out = capsys.readouterr().out
    assert "compiled (tape):" in out and " cache hits; compiling took " in out and "mean loss" in out
    with pytest.raises(SystemExit):
        gpt.main(["--compile", "jit"])


def test_explore_writes_the_position_collapsed_to_the_models_parts(tmp_path: Path) -> None:
    assert gpt.main(["--steps", "1", "--samples", "1", "--explore", str(tmp_path / "x.html")]) == 0
    page = (tmp_path / "x.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
    for part in gpt.COLLAPSE:
        assert part in page


# --- the benchmark workload


def workload() -> Any:
    if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not of the package
        sys.path.insert(0, str(ROOT))
    from benchmarks import microgpt_workload

    return microgpt_workload


def test_every_engine_matches_the_floor_on_loss_and_every_gradient() -> None:
    w = workload()
    from benchmarks.engines import available_engines
    from benchmarks.measure import verify

    params = {**w.QUICK, "doc": "emma", "n_layer": 2, "seed": 3}  # two layers: the caches of both
    want = w.reference(params)
    assert math.isfinite(want["loss"]) and want["loss"] > 0
    engines, _ = available_engines(["microgrannd", "closure-free", "torch"])
    assert {"microgrannd", "closure-free"} <= set(engines)
    for engine in engines.values():
        sampler = w.graph_sampler(engine, params)
        for _ in range(2):  # a second step starts from zeroed gradients
            total, phases, got = sampler.step()
            verify(engine.name, "microgpt_step", got, want)
        assert set(phases) == {"build", "backward", "free"} and total == pytest.approx(sum(phases.values()))
    assert len(w.reference(w.FULL)["grads"]) == 4192


def test_the_floor_gradients_match_finite_differences() -> None:
    w = workload()
    _, cfg, weights, tokens = w.setup(w.QUICK)
    grads = w.floor_gpt(weights, cfg, tokens)[2]["grads"]
    flat = [(k, r, c) for k, m in weights.items() for r, row in enumerate(m) for c in range(len(row))]
    assert len(flat) == len(grads)
    biggest = sorted(range(len(grads)), key=lambda i: -abs(grads[i]))[:3]
    for i in [*biggest, *random.Random(0).sample(range(len(grads)), 5)]:
        k, r, c = flat[i]
        x, h, losses = weights[k][r][c], 1e-6, []
        for sign in (1, -1):
            weights[k][r][c] = x + sign * h
            losses.append(w.floor_gpt(weights, cfg, tokens)[2]["loss"])
        weights[k][r][c] = x
        assert (losses[0] - losses[1]) / (2 * h) == pytest.approx(grads[i], rel=1e-5, abs=1e-8), (k, r, c)


def test_a_name_outside_the_vocabulary_is_refused() -> None:
    w = workload()
    with pytest.raises(ValueError, match="characters"):
        w.setup({**w.QUICK, "doc": "Ada"})
    with pytest.raises(ValueError, match="non-empty"):
        w.setup({**w.QUICK, "doc": ""})


def test_closure_free_engine_matches_microgrannd_on_each_op() -> None:
    workload()  # the checkout on sys.path
    from benchmarks.closure_free import Value as CF

    def f(a: Any, b: Any) -> Any:
        return ((a * b + a) ** 2.0).log() + (a - b).exp() / (b + 3.0) - (-a).relu() + (-b).relu() + 2.0 / b + (1.0 - a)

    x, y = CF(0.7), CF(-1.3)
    out = f(x, y)
    out.backward()
    mx, my = mg.Value(0.7), mg.Value(-1.3)
    ref = f(mx, my)
    ref.backward()
    assert out.data == pytest.approx(ref.data, rel=1e-12)
    assert (x.grad, y.grad) == pytest.approx((mx.grad, my.grad), rel=1e-12)
