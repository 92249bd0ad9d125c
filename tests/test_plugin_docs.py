"""docs/plugins.md documents every hook with its exact signature (like datasette's docs test)."""

from __future__ import annotations

import inspect
import re

from reconstruct import hookspecs


def hook_signatures() -> dict[str, str]:
    out = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(fn, "reconstruct_spec"):
            continue
        sig = inspect.signature(fn)
        params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
        out[name] = f"def {name}({params}) -> {sig.return_annotation}"
    return out


def test_every_hook_is_documented_with_its_exact_signature(repo_root):
    doc = (repo_root / "docs" / "plugins.md").read_text()
    sigs = hook_signatures()
    assert len(sigs) >= 10
    for name, sig in sigs.items():
        assert sig in doc, f"docs/plugins.md lacks the signature of {name}: {sig}"


def test_docs_name_no_hook_that_does_not_exist(repo_root):
    doc = (repo_root / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"^def (\w+)\(", doc, flags=re.M))
    assert documented == set(hook_signatures())


def test_every_hookspec_has_a_docstring():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, "reconstruct_spec"):
            assert fn.__doc__ and len(fn.__doc__.strip()) > 20, name
