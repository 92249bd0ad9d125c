"""Plugin host: the plugin manager factory and the component registry.

There is no global plugin manager: call :func:`make_plugin_manager` (tests get a fresh one each time).
Plugins come from the entry-point group ``reconstruct`` -- the built-in ones are declared there too, in this
project's pyproject.toml, exactly like a third party's. A plugin is blocked by ``--disable-plugin NAME`` or the
environment variable ``RECONSTRUCT_DISABLE_PLUGINS=name1,name2``; ``RECONSTRUCT_DISABLE_PLUGINS=all-external``
blocks every plugin that is not built in. The core pipeline (:data:`REQUIRED`) cannot be blocked, and a name that
is no plugin is an error (a typo would otherwise disable nothing, silently).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .components import iter_components
from .errors import ComponentNotFound, ConfigError, FaceModelError, PluginError

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("reconstruct")
ENTRY_POINT_GROUP = "reconstruct"
DISABLE_ENV = "RECONSTRUCT_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "deage"
#: plugins without which no run is meaningful: the stages every later stage stands on
REQUIRED = ("sync", "calibrate", "detect", "fit")


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What ``reconstruct plugins`` shows for one plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    status: str  # "loaded" | "disabled" | "failed: <reason>"


@dataclass
class PluginHost:
    """A plugin manager plus what happened while loading (failures, blocked plugins)."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def components(self) -> "Components":
        return Components(self)


def _blocked_from_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {x.strip() for x in raw.split(",") if x.strip()}


def make_plugin_manager(
    disable: Iterable[str] = (),
    extra_plugins: Iterable[tuple[str, Any]] = (),
    load_entry_points: bool = True,
) -> PluginHost:
    """Build a validated plugin manager.

    Args:
        disable: plugin names (entry-point names) not to load; merged with ``$RECONSTRUCT_DISABLE_PLUGINS``.
        extra_plugins: ``(name, plugin_object)`` pairs to register directly (tests, embedding).
        load_entry_points: False to load nothing from entry points (tests of the host itself).

    Raises:
        PluginError: a plugin implements a hook that does not exist (a misspelling) or with wrong arguments;
            the message names the plugin.
        ConfigError: a required plugin (:data:`REQUIRED`) is to be disabled, or a name to disable is no plugin.
    """
    pm = pluggy.PluginManager("reconstruct")
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm)
    from_env = _blocked_from_env()
    blocked = set(disable) | from_env
    block_external = "all-external" in blocked
    host.disabled = set(blocked) - {"all-external"}
    required = sorted(host.disabled & set(REQUIRED))
    if required:
        via = f"${DISABLE_ENV}" if set(required) <= from_env - set(disable) else "--disable-plugin"
        raise ConfigError(f"{via} {', '.join(required)}: the core pipeline ({', '.join(REQUIRED)}) cannot be "
                          "disabled", hint="a third-party stage can take a built-in stage's place by registering "
                                           "one of the same name with replaces = True")

    if load_entry_points:
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            builtin = dist == BUILTIN_DISTRIBUTION
            if ep.name in blocked or (block_external and not builtin):
                host.disabled.add(ep.name)
                host.infos[ep.name] = PluginInfo(ep.name, dist, version, (), builtin, "disabled")
                log.info("plugin %s disabled", ep.name)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not take the host down
                reason = f"{type(exc).__name__}: {exc}"
                host.failed[ep.name] = reason
                host.infos[ep.name] = PluginInfo(ep.name, dist, version, (), builtin, f"failed: {reason}")
                log.warning("plugin %s (%s %s) failed to import and is skipped: %s", ep.name, dist, version, reason)
                continue
            _register(host, ep.name, plugin, dist, version, builtin)
    for name, plugin in extra_plugins:
        if name in blocked:
            host.disabled.add(name)
            host.infos.setdefault(name, PluginInfo(name, "<direct>", "", (), False, "disabled"))
            continue
        _register(host, name, plugin, "<direct>", "", False)
    unknown = sorted(host.disabled - set(host.infos)) if load_entry_points else []
    if unknown:
        raise ConfigError(f"cannot disable {', '.join(repr(u) for u in unknown)}: no plugin has that name",
                          hint=f"plugins: {', '.join(sorted(host.infos))} (`reconstruct plugins` lists them)")
    return host


def _register(host: PluginHost, name: str, plugin: Any, dist: str, version: str, builtin: bool) -> None:
    pm = host.pm
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        raise PluginError(
            f"plugin {name!r} ({dist} {version}) is invalid: {exc}",
            hint=f"fix the plugin's hook names/arguments (see docs/plugins.md), or skip it with --disable-plugin {name}",
        ) from exc
    except ValueError as exc:  # duplicate name
        raise PluginError(f"plugin name {name!r} is registered twice: {exc}") from exc
    hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
    host.infos[name] = PluginInfo(name, dist, version, hooks, builtin, "loaded")


class Components:
    """Lookup of the components every plugin registered, by kind and name."""

    _HOOKS = {
        "camera_backend": "register_camera_backends",
        "landmark_detector": "register_landmark_detectors",
        "face_model": "register_face_models",
        "aging_method": "register_aging_methods",
        "renderer": "register_renderers",
        "compositor": "register_compositors",
        "report_section": "register_report_sections",
        "stage": "register_stages",
    }

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self._cache: dict[str, dict[str, Any]] = {}
        self._models: dict[str, Any] = {}

    def all(self, kind: str) -> dict[str, Any]:
        """name -> component for one kind (``camera_backend``, ``stage``, ...), in registration order."""
        if kind not in self._HOOKS:
            raise KeyError(f"unknown component kind {kind!r}; known: {', '.join(self._HOOKS)}")
        if kind not in self._cache:
            hook = getattr(self.host.hook, self._HOOKS[kind])
            out: dict[str, Any] = {}
            # pluggy calls the most recently registered plugin first: reverse so built-ins come first and a
            # third-party component with ``replaces = True`` overrides.
            for comp in iter_components(list(reversed(hook()))):
                name = getattr(comp, "name", None)
                if not name:
                    raise PluginError(f"a {kind} component {comp!r} has no name attribute")
                if name in out and not getattr(comp, "replaces", False):
                    raise PluginError(f"two plugins register a {kind} named {name!r}",
                                      hint="disable one of them with --disable-plugin, or set replaces = True")
                out[name] = comp
            self._cache[kind] = out
        return self._cache[kind]

    def get(self, kind: str, name: str) -> Any:
        comps = self.all(kind)
        if name in comps:
            return comps[name]
        msg = f"no {kind.replace('_', ' ')} named {name!r}; available: {', '.join(sorted(comps)) or 'none'}"
        hints = []
        if self.host.failed:
            hints.append("these plugins failed to import and may provide it: "
                         + "; ".join(f"{n}: {r}" for n, r in self.host.failed.items()))
        if self.host.disabled:
            hints.append(f"these plugins are disabled and may provide it: {', '.join(sorted(self.host.disabled))}")
        hint = "; ".join(hints) or "`reconstruct plugins` lists plugins and what they provide"
        raise ComponentNotFound(msg, hint=hint)

    def face_model(self, name: str) -> Any:
        """The face model ``name`` (a :class:`reconstruct.face.model.FaceModel`), loaded once per registry.

        Raises:
            ComponentNotFound: no plugin registers it. FaceModelError: it does not load or is not a face model.
        """
        if name not in self._models:
            from .face.model import FaceModel

            src = self.get("face_model", name)
            try:
                model = src.load()
            except FaceModelError:
                raise
            except Exception as exc:
                raise FaceModelError(f"face model {name!r} could not be loaded: {exc}",
                                     hint="`reconstruct models list` shows the models; re-import a broken one") from exc
            if not isinstance(model, FaceModel):
                raise FaceModelError(f"face model {name!r} is not a face model (got {type(model).__name__})")
            self._models[name] = model
        return self._models[name]
