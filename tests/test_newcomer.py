"""A newcomer's rough edges: packaging, the command line, notebooks, nn's errors, PyTorch habits, docs.

Grouped by the headings of the issue that listed them; each test fails
without the behaviour it names.
"""

from __future__ import annotations

import configparser
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import Value, nn
from microgrannd import render as render_mod
from microgrannd.cli import main
from microgrannd.draw import KIND_COLORS, GraphTooLargeError, draw
from microgrannd.tree import TextTree

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_process(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m microgrannd ARGV`` in a fresh interpreter, as a shell runs it."""
    return subprocess.run(
        [sys.executable, "-m", "microgrannd", *argv],
        capture_output=True, text=True, cwd=cwd, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def no_renderer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine with no graphviz renderer anywhere microgrannd looks."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv(render_mod.ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(render_mod, "_scripts_dir", lambda: str(empty))


# ==========================================================================
# Packaging


def test_the_console_command_is_the_command_line() -> None:
    assert PYPROJECT["project"]["scripts"] == {"microgrannd": "microgrannd.cli:main"}


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--version")
    assert status == 0 and err == ""
    assert out == f"microgrannd {mg.__version__}\n"
    assert PYPROJECT["project"]["version"] == mg.__version__  # one version, wherever it is read


def test_version_flag_through_python_dash_m() -> None:
    done = run_process("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"microgrannd {mg.__version__}"


def test_py_typed_marker_ships_with_the_package() -> None:
    assert (ROOT / "microgrannd" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["microgrannd"]


def test_licence_is_mit_for_the_microgrannd_authors() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "the microgrannd authors" in text
    assert "Permission is hereby granted, free of charge" in text
    assert PYPROJECT["project"]["license"] == "MIT"  # an SPDX expression
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_project_urls_are_real_or_absent() -> None:
    for name, url in PYPROJECT["project"].get("urls", {}).items():
        assert url.startswith("https://") and not re.search(r"example\.|TODO|USER|your-|<", url), (name, url)


def _copy_sources(dest: Path) -> None:
    """What a build reads: pyproject, README, LICENSE and the package (no caches)."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "microgrannd", dest / "microgrannd",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel as ``pip install .`` would (build isolation, pyproject's backend)."""
    try:
        import pip  # noqa: F401
    except ImportError:
        _cannot_build("pip is not installed in this interpreter")
    src, out = tmp_path / "src", tmp_path / "wheels"
    src.mkdir()
    _copy_sources(src)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(out), str(src)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    log = done.stdout + done.stderr
    if done.returncode != 0:
        unreachable = ("No matching distribution found for setuptools", "Could not find a version that satisfies")
        if any(u in log for u in unreachable):
            _cannot_build("pip cannot get the build backend (setuptools) from a package index: " + log[-300:])
        pytest.fail(f"building the wheel failed:\n{log[-3000:]}")
    (wheel,) = out.glob("microgrannd-*.whl")
    return wheel


def _cannot_build(why: str) -> None:
    """Skip where no wheel can be built at all, loudly; in CI that is a failure."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must be able to build the wheel: {why}")
    pytest.skip(f"cannot build a wheel on this machine: {why}")


def test_the_wheel_has_py_typed_the_licence_and_the_console_command(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "microgrannd/py.typed" in names
        licences = [n for n in names if ".dist-info/" in n and Path(n).name == "LICENSE"]
        assert len(licences) == 1
        assert z.read(licences[0]).decode() == (ROOT / "LICENSE").read_text(encoding="utf-8")
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(z.read(entry_points).decode())
        assert parser["console_scripts"]["microgrannd"] == "microgrannd.cli:main"
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = z.read(metadata).decode()
        assert f"Version: {mg.__version__}" in fields and "License-Expression: MIT" in fields


def test_install_advice_works_from_a_checkout() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install ".[render]"' in readme
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if page.name == "api.md":  # generated from docstrings
            continue
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"pip install \"?microgrannd\[", text), page.name


def test_the_renderer_hint_says_how_to_get_one_without_an_index_entry() -> None:
    assert "microgrannd[render]" not in render_mod.HINT
    assert "pip install graphviz-pure" in render_mod.HINT and 'pip install ".[render]"' in render_mod.HINT


# ==========================================================================
# Command line


def test_the_documented_dash_dash_form_takes_options_after_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "g.dot"
    status, out, err = run(capsys, "draw", "--", "-x * y", "x=1", "y=3", "-o", str(target))
    assert (status, err) == (0, "")
    assert "value = -3.0" in out and "d/dx = -3.0" in out and "d/dy = -1.0" in out
    assert target.read_text(encoding="utf-8").startswith("digraph")
    # and options may come first
    status, out, _ = run(capsys, "draw", "-o", str(target), "--", "-x", "x=2")
    assert status == 0 and "d/dx = -1.0" in out


def _one_line_refusal(done: subprocess.CompletedProcess[str], status: int) -> None:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(
    "output", ["/dev/full", "out", ".", "{tmp}", "{tmp}/", "/dev/stdout", "{tmp}/folder.svg"],
    ids=["dev-full", "no-extension", "dot", "a-folder", "a-folder-slash", "dev-stdout", "a-folder-with-extension"],
)
def test_an_output_the_picture_cannot_be_named_is_refused_in_one_line(tmp_path: Path, output: str) -> None:
    (tmp_path / "folder.svg").mkdir()
    done = run_process("draw", "x * y", "x=1", "y=2", "-o", output.format(tmp=tmp_path), cwd=tmp_path)
    _one_line_refusal(done, 2)
    assert done.stdout == ""  # refused before anything is computed or written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.svg"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_file_that_cannot_be_written_is_one_line_and_status_1(tmp_path: Path) -> None:
    full = tmp_path / "full.dot"
    full.symlink_to("/dev/full")
    done = run_process("draw", "x * y", "x=1", "y=2", "-o", str(full))
    _one_line_refusal(done, 1)
    assert "cannot write" in done.stderr and "No space left on device" in done.stderr


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_max_nodes_below_one_is_refused_in_one_line(limit: str, tmp_path: Path) -> None:
    done = run_process("draw", "x * y", "x=1", "y=2", "-o", str(tmp_path / "g.dot"), "--max-nodes", limit)
    _one_line_refusal(done, 2)
    assert "--max-nodes" in done.stderr


@pytest.mark.parametrize("bad", [["--max-nodes", "x"], ["--direction", "XX"], ["--no-such-option"], []],
                         ids=["not-an-int", "bad-choice", "unknown-option", "no-expression"])
def test_arguments_argparse_refuses_are_one_line_too(bad: list[str]) -> None:
    done = run_process("draw", *(["x * 2", "x=1", *bad] if bad else []))
    _one_line_refusal(done, 2)


@pytest.mark.parametrize("upstream", ["nan", "inf", "-inf"])
def test_a_non_finite_upstream_is_refused(capsys: pytest.CaptureFixture[str], upstream: str) -> None:
    status, out, err = run(capsys, "draw", "x * 2", "x=1", f"--upstream={upstream}")
    assert status == 2 and out == "" and err.startswith("error: --upstream") and err.count("\n") == 1


def test_the_too_large_message_gives_command_line_advice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    expr = "sigmoid(x)" + " * x" * 60
    status, out, err = run(capsys, "draw", expr, "x=1", "-o", str(tmp_path / "g.dot"), "--max-nodes", "20")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "more than --max-nodes 20" in err and "--collapse" in err and err.endswith("--max-nodes 67\n")
    assert "max_nodes=" not in err and "draw(" not in err
    status, _, err = run(capsys, "draw", expr, "x=1", "-o", str(tmp_path / "g.dot"), "--max-nodes", "20",
                         "--collapse")
    assert status == 2 and "--collapse" not in err  # already collapsed: only the limit is advice
    with pytest.raises(GraphTooLargeError) as caught:  # the library keeps its Python advice
        draw(mg.sigmoid(Value(1.0)), max_nodes=2)
    assert "max_nodes=" in str(caught.value) and caught.value.count == 7 and caught.value.max_nodes == 2


def test_binding_names_are_nfkc_normalised_like_the_expression(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "draw", "ｘ", "ｘ=1")
    assert (status, err) == (0, "")
    assert "d/dx = 1.0" in out
    status, out, err = run(capsys, "draw", "x * ｘ", "ｘ=3")  # both spellings are one name
    assert status == 0 and "d/dx = 6.0" in out
    status, _, err = run(capsys, "draw", "x", "x=1", "ｘ=2")
    assert status == 2 and "twice" in err


def test_an_expression_of_constants_alone(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "draw", "2 * 3", "x=1")
    assert (status, err) == (0, "")
    assert "value = 6.0" in out and "d/dx = 0.0" in out and "6  (constant)" in out


# ==========================================================================
# Notebooks


def test_without_a_renderer_a_notebook_shows_the_text_tree_and_the_hint(no_renderer: None) -> None:
    x = Value(-1.0, "x")
    y = mg.sigmoid(x)
    y.backward()
    bundle = draw(y)._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    text = bundle["text/plain"]
    assert "pip install graphviz-pure" in text
    assert str(mg.tree(y)) in text
    assert "digraph" not in text and "->" not in text
    assert len(text.splitlines()) < 15  # the hint, a heading and the seven nodes, not the DOT


class _Printer:
    """The part of IPython's pretty printer that ``_repr_pretty_`` uses."""

    def __init__(self) -> None:
        self.out = ""

    def text(self, s: str) -> None:
        self.out += s

    def break_(self) -> None:
        self.out += "\n"


def test_tree_displays_as_the_tree() -> None:
    x = Value(2.0, "x")
    y = x * x + 1.0
    t = mg.tree(y)
    assert isinstance(t, TextTree) and isinstance(t, str)
    assert repr(t) == str(t) and "\\n" not in repr(t) and not repr(t).startswith("'")
    assert repr(t).splitlines()[0] == "5  grad ?  = +"
    printer = _Printer()
    t._repr_pretty_(printer, False)
    assert printer.out == str(t)
    # still a str for code that treats it as one
    assert type(str(t)) is str and t == str(t) and t.splitlines() == str(t).splitlines()
    assert "x = 2" in t and t.count("\n") == 4 and (t + "!").endswith("!")


# ==========================================================================
# nn: clear errors for bad input


def _message(exc: type[Exception], make: Any) -> str:
    with pytest.raises(exc) as caught:
        make()
    return str(caught.value)


def test_a_wrong_number_of_inputs_names_x_and_the_expected_count() -> None:
    model = nn.MLP(2, [16, 1], rng=0)
    text = _message(ValueError, lambda: model([1.0]))
    assert "x" in text and "2 inputs" in text and "zip" not in text
    assert "3 inputs" in _message(ValueError, lambda: nn.Neuron(3, rng=0)([1.0, 2.0]))
    assert "3 inputs" in _message(ValueError, lambda: nn.Layer(3, 2, rng=0)([1.0] * 4))
    assert isinstance(model(v for v in [1.0, 2.0]), Value)  # any iterable of the right length


def test_nouts_must_be_a_list_of_widths() -> None:
    text = _message(TypeError, lambda: nn.MLP(2, 16))
    assert "nouts" in text and "[16, 16, 1]" in text
    assert "nouts" in _message(ValueError, lambda: nn.MLP(2, []))
    assert "nouts[1]" in _message(ValueError, lambda: nn.MLP(2, [3, 0]))
    assert "nouts[0]" in _message(TypeError, lambda: nn.MLP(2, [2.5]))


@pytest.mark.parametrize("make", [lambda: nn.MLP(-1, [3]), lambda: nn.Layer(-1, 3), lambda: nn.Neuron(-2)],
                         ids=["MLP", "Layer", "Neuron"])
def test_a_negative_nin_is_refused(make: Any) -> None:
    assert "nin" in _message(ValueError, make)


def test_nin_must_be_an_int() -> None:
    assert "nin" in _message(TypeError, lambda: nn.MLP(2.0, [3]))
    assert "nin" in _message(TypeError, lambda: nn.MLP(True, [3]))


@pytest.mark.parametrize("p", [-0.5, math.nan, 1.5])
def test_mlp_dropout_is_checked_like_dropout(p: float) -> None:
    assert "dropout" in _message(ValueError, lambda: nn.MLP(2, [3, 1], dropout=p))
    assert "p must be a probability" in _message(ValueError, lambda: nn.Dropout(p))


@pytest.mark.parametrize("lr", [math.nan, math.inf, -0.1])
@pytest.mark.parametrize("optimizer", [nn.SGD, nn.Adam])
def test_a_learning_rate_must_be_finite_and_not_negative(optimizer: Any, lr: float) -> None:
    assert "lr" in _message(ValueError, lambda: optimizer([Value(1.0)], lr=lr))
    opt = optimizer([Value(1.0)], lr=0.1)
    assert "lr" in _message(ValueError, lambda: setattr(opt, "lr", lr))


@pytest.mark.parametrize("eps", [0.0, -1e-8, math.nan])
def test_adam_eps_must_be_above_zero(eps: float) -> None:
    assert "eps" in _message(ValueError, lambda: nn.Adam([Value(1.0)], eps=eps))


@pytest.mark.parametrize("prob", [1.5, -0.5, math.nan, Value(1.5), Value(-1e-9)])
def test_binary_cross_entropy_refuses_a_probability_outside_0_1(prob: Any) -> None:
    text = _message(ValueError, lambda: nn.binary_cross_entropy(prob, 1.0))
    assert "prob" in text and "[0, 1]" in text and "with_logits" in text
    assert "prob" in _message(ValueError, lambda: nn.binary_cross_entropy([0.5, prob], [1.0, 0.0]))


def test_binary_cross_entropy_keeps_its_edges_and_still_compiles() -> None:
    assert nn.binary_cross_entropy(Value(0.0), 1.0).data == 100.0  # clamped, as in PyTorch
    assert nn.binary_cross_entropy(1.0, 1.0) == 0.0
    c = mg.compile(lambda p: nn.binary_cross_entropy(p, 1.0), 0.3)  # the check is not traced
    value, (dp,) = c(0.8)
    assert value == pytest.approx(-math.log(0.8)) and dp == pytest.approx(-1 / 0.8)


# ==========================================================================
# PyTorch habits


def test_sgd_weight_decay_against_hand_computation() -> None:
    p = Value(1.0)
    p.grad = 0.5
    nn.SGD([p], lr=0.1, weight_decay=0.01).step()
    assert p.data == pytest.approx(1.0 - 0.1 * (0.5 + 0.01 * 1.0), rel=1e-15)  # g += wd * p
    q = Value(1.0)
    opt = nn.SGD([q], lr=0.1, momentum=0.9, weight_decay=0.1)
    for g in (0.5, -0.2):
        q.grad = g
        opt.step()
    # g1 = 0.5 + 0.1 = 0.6 = v1, q = 0.94; g2 = -0.2 + 0.094 = -0.106, v2 = 0.54 - 0.106 = 0.434, q = 0.8966
    assert q.data == pytest.approx(0.8966, rel=1e-14)


def test_sgd_nesterov_against_hand_computation() -> None:
    p = Value(1.0)
    opt = nn.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    for g in (0.5, -0.2):
        p.grad = g
        opt.step()
    # v1 = 0.5, step 0.5 + 0.45 = 0.95, p = 0.905; v2 = 0.45 - 0.2 = 0.25, step -0.2 + 0.225 = 0.025, p = 0.9025
    assert p.data == pytest.approx(0.9025, rel=1e-14)
    assert "momentum" in _message(ValueError, lambda: nn.SGD([Value(1.0)], lr=0.1, nesterov=True))


def test_adam_weight_decay_against_hand_computation() -> None:
    p = Value(1.0)
    opt = nn.Adam([p], lr=0.01, weight_decay=0.1)
    p.grad = 0.5
    opt.step()
    g = 0.5 + 0.1 * 1.0  # step 1: m_hat = g, v_hat = g^2
    assert p.data == pytest.approx(1.0 - 0.01 * g / (g + 1e-8), rel=1e-14)


def test_parameter_groups_for_sgd() -> None:
    w, b = Value(1.0), Value(1.0)
    opt = nn.SGD([{"params": [w]}, {"params": [b], "lr": 0.5, "momentum": 0.0}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.0]
    assert opt.param_groups[0]["params"] == [w] and opt.params == [w, b]
    for grad in (1.0, 1.0):
        w.grad = b.grad = grad
        opt.step()
    assert w.data == pytest.approx(1.0 - 0.1 * 1.0 - 0.1 * 1.9, rel=1e-14)  # momentum: v = 1, then 1.9
    assert b.data == pytest.approx(1.0 - 0.5 - 0.5, abs=1e-15)  # its own lr, no momentum
    opt.lr = 0.01  # a schedule sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01] and opt.lr == 0.01
    opt.zero_grad()
    assert w.grad == 0.0 and b.grad == 0.0


def test_parameter_groups_for_adam_each_with_its_own_settings_and_step_count() -> None:
    a, b = Value(1.0), Value(1.0)
    opt = nn.Adam([{"params": [a], "lr": 0.1}, {"params": [b], "betas": (0.5, 0.9), "eps": 1e-3}], lr=0.01)
    a.grad = b.grad = 0.5
    opt.step()
    assert a.data == pytest.approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-14)
    assert b.data == pytest.approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-3), rel=1e-14)
    c = Value(2.0)
    opt.add_param_group({"params": [c], "lr": 0.2})  # a late group starts at step 1 (bias correction too)
    a.grad = b.grad = c.grad = 0.25
    opt.step()
    assert c.data == pytest.approx(2.0 - 0.2 * 0.25 / (0.25 + 1e-8), rel=1e-14)
    m = 0.9 * 0.05 + 0.1 * 0.25
    v = 0.999 * 0.001 * 0.25 + 0.001 * 0.0625
    expected = (1.0 - 0.1 * 0.5 / (0.5 + 1e-8)) - 0.1 * (m / (1 - 0.9**2)) / (math.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert a.data == pytest.approx(expected, rel=1e-14)


def test_parameter_groups_are_checked() -> None:
    w = Value(1.0)
    assert "more than once" in _message(ValueError, lambda: nn.SGD([{"params": [w]}, {"params": [w]}], lr=0.1))
    assert "mixture" in _message(TypeError, lambda: nn.SGD([w, {"params": [Value(2.0)]}], lr=0.1))
    assert "lr" in _message(ValueError, lambda: nn.SGD([{"params": [w]}]))
    assert nn.SGD([{"params": [w], "lr": 0.3}]).lr == 0.3  # lr from the group alone
    assert "momentum" in _message(ValueError, lambda: nn.SGD([{"params": [w], "momentum": 1.5}], lr=0.1))
    assert "params" in _message(TypeError, lambda: nn.SGD([{"params": ["w"]}], lr=0.1))
    assert "betas" in _message(ValueError, lambda: nn.Adam([{"params": [w], "betas": (0.9, math.nan)}]))


def _kinds(source: str) -> dict[str, int]:
    return {kind: source.count(f"tooltip={kind}") for kind in KIND_COLORS}


def test_draw_params_as_a_dict_names_the_parameters() -> None:
    w, b, x = Value(-1.5), Value(0.25), Value(0.5, "x")
    y = w * x + b
    source = draw(y, params={"w": w, "b": b}).source
    assert _kinds(source)["parameter"] == 2 and _kinds(source)["input"] == 1
    assert "<B>w</B>" in source and "<B>b</B>" in source
    assert w.label == "" and b.label == ""  # the picture names them; the Values are unchanged


@pytest.mark.parametrize("bad", [["w"], [1.0], "w", 3], ids=["names", "numbers", "a-string", "an-int"])
def test_draw_refuses_params_that_are_not_values(bad: Any) -> None:
    with pytest.raises(TypeError, match="params"):
        draw(Value(1.0) * 2.0, params=bad)


def test_nn_weights_are_parameters_without_an_argument() -> None:
    model = nn.MLP(2, [2, 1], rng=0)
    x1, x2 = Value(0.5, "x1"), Value(-1.0, "x2")
    out = model([x1, x2])
    kinds = _kinds(draw(out).source)
    assert kinds["parameter"] == len(model.parameters()) == 9 and kinds["input"] == 2
    assert _kinds(draw(out, params=model).source)["parameter"] == 9
    assert _kinds(draw(out, params=model.parameters()).source)["parameter"] == 9
    # listed as inputs, a neuron's weight is an input
    first = model.parameters()[0]
    assert _kinds(draw(out, inputs=[x1, x2, first]).source) == {**kinds, "parameter": 8, "input": 3}
    # plain leaves stay inputs
    z = Value(1.0, "z")
    assert _kinds(draw(z * 3.0).source)["input"] == 1


# ==========================================================================
# Porting from micrograd


def test_nn_seed_and_uniform_init_reproduce_micrograds_weights() -> None:
    micrograd_nn = pytest.importorskip("micrograd.nn")
    state = random.getstate()
    try:
        random.seed(1337)
        theirs = micrograd_nn.MLP(2, [16, 16, 1])
    finally:
        random.setstate(state)
    nn.seed(1337)
    ours = nn.MLP(2, [16, 16, 1], init="uniform")
    assert [p.data for p in ours.parameters()] == [float(p.data) for p in theirs.parameters()]
    assert str(ours) == str(theirs)
    text = (ROOT / "docs" / "from-micrograd-and-pytorch.md").read_text(encoding="utf-8")
    assert "nn.seed(1337)" in text and 'init="uniform"' in text
    for difference in ("fan_in", "biases", "the global `random` module"):
        assert difference in text


# ==========================================================================
# Docs


def test_demos_are_listed_by_name_not_by_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    listing = capsys.readouterr().out
    assert "shopping" in listing and not re.search(r"seed ex", listing, re.IGNORECASE)
    drawing = (ROOT / "docs" / "drawing.md").read_text(encoding="utf-8")
    assert not re.search(r"seed example", drawing, re.IGNORECASE)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Where the fenced code blocks of ``text`` are, as (start, end) offsets."""
    return [m.span() for m in re.finditer(r"^```.*?^```", text, flags=re.MULTILINE | re.DOTALL)]


def test_the_tutorial_links_the_nn_guide_where_next() -> None:
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    where_next = tutorial.split("## Where next", 1)[1]
    assert "(nn.md)" in where_next


def test_requires_grad_is_introduced_before_code_uses_it() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if page.name == "api.md":
            continue
        text = page.read_text(encoding="utf-8")
        spans = _code_spans(text)
        in_code = [m.start() for m in re.finditer("requires_grad", text) if any(a <= m.start() < b for a, b in spans)]
        if not in_code:
            continue
        before = text[: in_code[0]]
        prose = re.sub(r"^```.*?^```", "", before, flags=re.MULTILINE | re.DOTALL)
        assert "requires_grad" in prose, f"{page.name}: code uses requires_grad before the text says what it is"


def test_the_readme_gives_the_measured_speed_ratios_and_where_they_come_from() -> None:
    speed = " ".join((ROOT / "docs" / "speed.md").read_text(encoding="utf-8").split())
    runs = speed[speed.index("## One run: a snapshot") : speed.index("## Why microgrannd")]
    ratios = re.findall(r"microgrannd (?:is|was) ([\d.]+) times faster than micrograd with the collector on", runs)
    assert len(ratios) == 2, ratios  # the two runs the page shows
    low, high = sorted(ratios, key=float)
    span = f"{low} to {high} times faster than micrograd"
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"{span} in two runs" in readme
    assert "docs/speed.md#one-run-a-snapshot" in readme
    assert f"was {span}" in speed  # the page's summary gives the same numbers
