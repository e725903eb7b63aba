"""Generate docs/api.md, the API reference, from the code.

    python scripts/gen_api.py           # write docs/api.md
    python scripts/gen_api.py --check   # exit 1 if docs/api.md is stale

Every public module of the package is found by walking it (a module whose
name starts with ``_``, and ``__main__``, are skipped), so a new module is
documented as soon as it exists.  A module's public names are its
``__all__`` (or, without one, the names it defines that do not start with
``_``).  The top-level ``microgrannd`` section is a table of
``microgrannd.__all__`` linking to where each name is defined.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api.md"
PACKAGE = "microgrannd"
WIDTH = 88  # longer signatures get one parameter per line


def public_modules(package: str = PACKAGE) -> list[ModuleType]:
    """The package and its public submodules, in name order."""
    root = importlib.import_module(package)
    mods = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts):
            continue
        mods.append(importlib.import_module(info.name))
    return [root, *sorted(mods[1:], key=lambda m: m.__name__)]


def public_names(module: ModuleType) -> list[str]:
    """``module.__all__``, or the public names it defines itself."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(
        n for n, obj in vars(module).items()
        if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    )


def members(cls: type) -> Iterator[tuple[str, Any]]:
    """A class's public methods and properties, in definition order."""
    for name, obj in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if inspect.isfunction(obj) or isinstance(obj, property):
            yield name, obj


# --------------------------------------------------------------------------
# Formatting


def _annotation(a: Any) -> str:
    return a if isinstance(a, str) else inspect.formatannotation(a)


def signature(obj: Callable[..., Any], name: str, *, drop_self: bool = False) -> str:
    """``name(params) -> return`` with annotations as written in the source."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # e.g. an exception class without its own __init__
        return f"{name}(*args)"
    params = list(sig.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    parts: list[str] = []
    seen_kw_only = False
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            parts.append("*")
            seen_kw_only = True
        if p.kind is p.VAR_POSITIONAL:
            seen_kw_only = True
        stars = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        text = stars + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            default = stable_repr(p.default) or getattr(p.default, "__name__", "...")
            text += f" = {default}" if p.annotation is not p.empty else f"={default}"
        parts.append(text)
        last_positional_only = p.kind is p.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        )
        if last_positional_only:
            parts.append("/")
    ret = ""
    if sig.return_annotation is not sig.empty and not inspect.isclass(obj):
        ret = f" -> {_annotation(sig.return_annotation)}"
    one_line = f"{name}({', '.join(parts)}){ret}"
    if len(one_line) <= WIDTH:
        return one_line
    return f"{name}(\n" + "".join(f"    {p},\n" for p in parts) + f"){ret}"


def signatures(obj: Callable[..., Any], name: str, *, drop_self: bool = False) -> list[str]:
    """The overloads of ``obj`` if it declares any, else its one signature."""
    overloads = typing.get_overloads(obj) if inspect.isfunction(obj) else []
    return [signature(f, name, drop_self=drop_self) for f in overloads or [obj]]


ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc):`~?(?:[\w.]*\.)?([\w]+)`")


def markdown(doc: str) -> str:
    """A docstring in Markdown: reST roles and ``literals`` become code, sections become lists."""
    text = ROLE.sub(r"`\1`", doc)
    text = re.sub(r"::$", ":", text, flags=re.M)  # a reST literal block: Markdown indents it too
    text = re.sub(r"``(.+?)``", r"`\1`", text, flags=re.S)
    out: list[str] = []
    in_section = False
    for line in text.splitlines():
        section = re.fullmatch(r"(Attributes|Args|Arguments|Parameters|Returns|Raises|Yields):", line.strip())
        if section:
            out += ["", f"**{section.group(1)}:**", ""]
            in_section = True
            continue
        if in_section and line.startswith("    "):
            item = re.fullmatch(r"    (\w+)( \([^)]*\))?: (.*)", line)
            if item:
                out.append(f"- `{item.group(1)}`{item.group(2) or ''}: {item.group(3)}")
            else:
                out[-1] += " " + line.strip()
            continue
        in_section = False
        out.append(line)
    return "\n".join(out).strip()


def summary(obj: Any) -> str:
    """The first sentence (first paragraph line) of an object's docstring, in Markdown."""
    doc = inspect.getdoc(obj) or ""
    return markdown(doc.split("\n\n")[0]).replace("\n", " ")


def slug(text: str) -> str:
    """The anchor a code host gives a heading."""
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def kind(obj: Any) -> str:
    """class, function, or the type name of a data object."""
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "module" if inspect.ismodule(obj) else type(obj).__name__


# --------------------------------------------------------------------------
# The page


class Page:
    """Markdown lines plus the anchor of every heading, numbered as a code host numbers repeats."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}

    def heading(self, level: int, text: str) -> str:
        """Add a heading; return its anchor."""
        base = slug(text)
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        self.lines += ["#" * level + " " + text, ""]
        return base if n == 0 else f"{base}-{n}"

    def add(self, *lines: str) -> None:
        """Add lines of text."""
        self.lines += lines


def entry(page: Page, name: str, obj: Any) -> str:
    """Add the reference entry for one public name; return its anchor."""
    anchor = page.heading(3, f"`{name}`")
    if inspect.isclass(obj) or callable(obj):
        page.add("```python no-run", *signatures(obj, name), "```", "")
        doc = inspect.getdoc(obj)
        if doc:
            page.add(markdown(doc), "")
    elif inspect.ismodule(obj):
        page.add(f"The module `{obj.__name__}`, documented in its own section.", "")
    else:
        page.add(f"`{name}`: `{type(obj).__name__}`" + _data_note(obj), "")
    if inspect.isclass(obj):
        for mname, m in members(obj):
            qual = f"{name}.{mname}"
            if isinstance(m, property):
                page.heading(4, f"`{qual}` (property)")
                doc = inspect.getdoc(m.fget) if m.fget else None
            else:
                page.heading(4, f"`{qual}`")
                page.add("```python no-run", *signatures(m, qual, drop_self=True), "```", "")
                doc = inspect.getdoc(m)
            if doc:
                page.add(markdown(doc), "")
    return anchor


def _data_note(obj: Any) -> str:
    if isinstance(obj, dict):
        return " with keys " + ", ".join(f"`{k}`" for k in obj)
    text = stable_repr(obj)
    return f" = `{text}`" if text else ""


def stable_repr(obj: Any) -> str:
    """``repr(obj)``, or ``""`` when it shows a memory address (it would change every run)."""
    text = repr(obj)
    return "" if re.search(r" at 0x[0-9a-fA-F]+", text) else text


def render() -> str:
    """The whole of docs/api.md as a string."""
    mods = public_modules()
    root, subs = mods[0], mods[1:]
    # The sections first, so that the top-level table can link to their anchors.
    body = Page()
    body.counts[slug("API reference")] = 1
    body.counts[slug(f"`{root.__name__}`")] = 1
    anchor_of: dict[int, str] = {}  # id(obj) -> anchor of its first entry
    own = [n for n in public_names(root)
           if not any(getattr(root, n) is getattr(m, k) for m in subs for k in public_names(m))]
    for n in own:
        anchor_of.setdefault(id(getattr(root, n)), entry(body, n, getattr(root, n)))
    module_anchor = {root.__name__: slug(f"`{root.__name__}`")}
    for m in subs:
        module_anchor[m.__name__] = body.heading(2, f"`{m.__name__}`")
        doc = inspect.getdoc(m)
        if doc:
            body.add(markdown(doc), "")
        for n in public_names(m):
            anchor_of.setdefault(id(getattr(m, n)), entry(body, n, getattr(m, n)))

    head = Page()
    head.add(
        "# API reference",
        "",
        "<!-- Generated by scripts/gen_api.py from the code: do not edit by hand. -->",
        "",
        "Generated from the code's signatures and docstrings by `python scripts/gen_api.py`;",
        "a test regenerates it and fails if this page is stale.",
        "",
        "Modules: " + ", ".join(f"[`{m.__name__}`](#{module_anchor[m.__name__]})" for m in mods),
        "",
        f"## `{root.__name__}`",
        "",
        markdown(inspect.getdoc(root) or ""),
        "",
        f"Everything in `{root.__name__}.__all__`, importable as `{root.__name__}.<name>`:",
        "",
        "| Name | Kind | Summary |",
        "| --- | --- | --- |",
    )
    for n in public_names(root):
        obj = getattr(root, n)
        text = summary(obj).replace("|", "\\|") if (inspect.isclass(obj) or callable(obj)) else ""
        head.add(f"| [`{n}`](#{anchor_of[id(obj)]}) | {kind(obj)} | {text} |")
    head.add("")
    text = "\n".join(head.lines + body.lines)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def missing_docstrings() -> list[str]:
    """Public functions, classes and methods without a docstring."""
    missing: list[str] = []
    for m in public_modules():
        if not inspect.getdoc(m):
            missing.append(m.__name__)
        for n in public_names(m):
            obj = getattr(m, n)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not obj.__doc__:
                missing.append(f"{m.__name__}.{n}")
            if inspect.isclass(obj):
                for mname, member in members(obj):
                    fn = member.fget if isinstance(member, property) else member
                    if fn is not None and not fn.__doc__:
                        missing.append(f"{m.__name__}.{n}.{mname}")
    return sorted(set(missing))


def main(argv: list[str]) -> int:
    """Write docs/api.md, or with ``--check`` report whether it is current."""
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print("docs/api.md is stale: run `python scripts/gen_api.py`", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
