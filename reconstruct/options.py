"""Stage, method and executor settings: declared as frozen dataclasses, parsed once, strictly, at the edge.

A stage, a method or an executor declares a ``Settings`` class: a frozen dataclass whose fields are its options,
each with a default and a one-line help (:func:`option`). ``reconstruct run`` collects every declared namespace
(stage names, method names, ``frames``, ``ray``), parses every ``--option NAMESPACE.KEY=VALUE`` once before any
stage runs (:func:`parse_run_options`) and hands each its instance (``ctx.settings[name]``). There is one parser
for every value type (:func:`parse_value`): a misspelled namespace or key, or a value of the wrong type, is a
:class:`~reconstruct.errors.ConfigError` (exit 2) that lists what exists.

Field types understood: ``bool`` (true/false, yes/no, on/off, 1/0), ``int``, ``float`` (finite), ``str``,
``pathlib.Path``, ``Literal[...]`` (one of the listed strings), and ``X | None`` (``none`` gives None).
Range checks belong in the dataclass's ``__post_init__`` (raise ``ValueError``; the message reaches the user).

A plugin namespace that declares no ``Settings`` (written before this contract) still receives its raw string
values unchecked, with a warning; it is read through :meth:`reconstruct.methods.MethodContext.option`.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import types
from dataclasses import field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError

log = logging.getLogger(__name__)

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def option(default: Any, help: str) -> Any:  # noqa: A002 - the argparse word
    """A settings field with its default and a one-line help (shown by ``reconstruct options`` and in errors)."""
    return field(default=default, metadata={"help": help})


def parse_flag(text: Any) -> bool:
    """A strict on/off value: 1, true, yes, on / 0, false, no, off (any case); anything else is a ValueError."""
    s = str(text).strip().lower()
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint) if a is not type(None)) + " or none"
    return getattr(hint, "__name__", str(hint))


def parse_value(text: Any, hint: Any) -> Any:
    """``text`` (a command-line string) as a value of the field type ``hint``; ValueError with a short reason."""
    origin = get_origin(hint)
    s = str(text).strip()
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if s.lower() == "none":
            return None
        errors = []
        for a in args:
            try:
                return parse_value(s, a)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is Literal:
        allowed = [str(a) for a in get_args(hint)]
        if s not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return s
    if hint is bool:
        return parse_flag(s)
    if hint is int:
        try:
            return int(s)
        except ValueError:
            raise ValueError(f"expected a whole number, got {s!r}") from None
    if hint is float:
        try:
            v = float(s)
        except ValueError:
            raise ValueError(f"expected a number, got {s!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"expected a finite number, got {s!r}")
        return v
    if hint is str:
        return s
    if hint is Path:
        return Path(s)
    raise TypeError(f"settings field type {hint!r} is not supported by the option parser")  # a plugin bug


def settings_fields(cls: type) -> dict[str, tuple[Any, Any, str]]:
    """Field name -> (type hint, default, help) of a Settings dataclass, in declaration order."""
    hints = get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        out[f.name] = (hints[f.name], default, f.metadata.get("help", ""))
    return out


def describe_field(namespace: str, key: str, hint: Any, default: Any, help: str) -> str:  # noqa: A002
    d = "none" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
    return f"{namespace}.{key}: {_type_name(hint)} (default {d})" + (f" - {help}" if help else "")


def parse_settings(cls: type, values: Mapping[str, Any], namespace: str) -> Any:
    """An instance of the Settings dataclass ``cls`` from ``values`` (key -> text, keys without the namespace);
    missing keys keep their defaults. ConfigError for an unknown key, a bad value or a failed range check."""
    known = settings_fields(cls)
    kw: dict[str, Any] = {}
    for key, text in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            listing = ", ".join(f"{namespace}.{k}" for k in known) or "none"
            raise ConfigError(f"--option {namespace}.{key}: {namespace} has no option {key!r}"
                              + (f" (did you mean {namespace}.{close[0]}?)" if close else ""),
                              hint=f"{namespace} options: {listing}; `reconstruct options {namespace}` explains each")
        hint, default, help_ = known[key]
        try:
            kw[key] = parse_value(text, hint)
        except ValueError as exc:
            raise ConfigError(f"--option {namespace}.{key}={text}: {exc}",
                              hint=describe_field(namespace, key, hint, default, help_)) from exc
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:  # the dataclass's own range checks name the option
        raise ConfigError(f"bad {namespace} option: {exc}",
                          hint=f"`reconstruct options {namespace}` lists the options and their ranges") from exc


def settings_dict(settings: Any) -> dict[str, Any]:
    """A Settings instance as a JSON-serialisable dict (for cache keys, provenance and reports)."""
    if settings is None:
        return {}
    if not dataclasses.is_dataclass(settings):
        return {str(k): str(v) for k, v in dict(settings).items()}
    out = {}
    for f in dataclasses.fields(settings):
        v = getattr(settings, f.name)
        out[f.name] = str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
    return out


class RunSettings(Mapping[str, Any]):
    """Every namespace's parsed settings for one run: ``settings["fit"]`` is the fit stage's Settings instance
    (defaults where no option was given); a namespace that declares no Settings class maps to its raw
    ``{key: text}`` dict. Read-only and picklable (work items carry it to worker processes)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, namespace: str) -> Any:
        try:
            return self._values[namespace]
        except KeyError:
            raise KeyError(f"no settings namespace {namespace!r}; known: {', '.join(sorted(self._values))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RunSettings({sorted(self._values)})"


def split_options(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"fit.iterations": "5"}`` -> ``{"fit": {"iterations": "5"}}``; a key without a namespace is an error."""
    out: dict[str, dict[str, Any]] = {}
    for key, val in raw.items():
        ns, dot, k = str(key).partition(".")
        if not dot or not ns or not k:
            raise ConfigError(f"--option {key}={val}: options are written NAMESPACE.KEY=VALUE",
                              hint="e.g. --option fit.iterations=20; `reconstruct options` lists them all")
        out.setdefault(ns, {})[k] = val
    return out


def parse_run_options(raw: Mapping[str, Any], declared: Mapping[str, type | None]) -> RunSettings:
    """Parse every ``--option`` of a run at once.

    Args:
        raw: ``NAMESPACE.KEY`` -> text, as given on the command line (plugin CLI flags already merged in).
        declared: namespace -> its Settings dataclass, or None for a plugin namespace without one (raw values
            are passed through unchecked).

    Raises:
        ConfigError: an unknown namespace or key, or a value that does not parse; the message lists what exists.
    """
    groups = split_options(raw)
    for ns in groups:
        if ns not in declared:
            close = difflib.get_close_matches(ns, list(declared), n=1)
            first = next(iter(groups[ns]))
            raise ConfigError(f"--option {ns}.{first}: no stage, method or executor is named {ns!r}"
                              + (f" (did you mean {close[0]}.{first}?)" if close else ""),
                              hint=f"namespaces: {', '.join(sorted(declared))}; `reconstruct options` lists every "
                                   "option")
    values: dict[str, Any] = {}
    for ns, cls in declared.items():
        given = groups.get(ns, {})
        if cls is None:
            if given:
                log.warning("%s declares no Settings class: its options %s are passed on unchecked", ns,
                            ", ".join(f"{ns}.{k}" for k in given))
            values[ns] = dict(given)
        else:
            values[ns] = parse_settings(cls, given, ns)
    return RunSettings(values)
