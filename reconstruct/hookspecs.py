"""Hook specifications: the whole plugin surface, grouped by pipeline phase.

A plugin is a module or object with functions decorated ``@reconstruct.hookimpl`` whose names match the specs
below. Plugins are found through the entry-point group ``reconstruct`` (built-ins included, see pyproject.toml).
``register_*`` hooks return *components* (classes or instances, see :mod:`reconstruct.components`); the host owns
their lifecycle. Unless stated, every plugin's result is collected (not first-result-wins).
``docs/plugins.md`` documents each hook with its exact signature; ``tests/test_plugin_docs.py`` keeps them in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .components import (AgingMethod, CameraBackend, Compositor, FaceModelSource, LandmarkDetector,
                             Renderer, ReportSection)
    from .stage import RunConfig, Stage, StageContext

hookspec = pluggy.HookspecMarker("reconstruct")


# ---------------------------------------------------------------------------------------------------------------
# Host: start-up
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_cli_arguments(command: str, parser: Any) -> None:
    """Add options to a CLI sub-command's ``argparse`` parser before arguments are parsed.

    Fires once per invocation for the sub-command being run (``command`` is e.g. ``"run"`` or ``"train"``).
    Flags should be named after the plugin (``--fran-windows``). For ``run``, a flag whose ``dest`` is
    ``"NAMESPACE.KEY"`` (e.g. ``dest="digital_human.young_refs"``) reaches that stage's or method's Settings like
    ``--option NAMESPACE.KEY=VALUE`` (the flag wins when both are given). Returns nothing.
    """


# ---------------------------------------------------------------------------------------------------------------
# Capture phase
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_camera_backends() -> list[type[CameraBackend]]:
    """Return camera backend classes (see :class:`reconstruct.components.CameraBackend`).

    Fires when a capture command or the synthetic generator looks up a backend by the rig's ``backend`` name.
    """


# ---------------------------------------------------------------------------------------------------------------
# Pipeline graph
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_stages() -> list[Stage]:
    """Return pipeline stage instances (see :class:`reconstruct.components.Stage`).

    Fires once when ``reconstruct run`` builds its graph. Two plugins returning the same stage name is an error,
    unless the later one is a third-party plugin that sets ``replaces = True`` on its stage.
    """


# ---------------------------------------------------------------------------------------------------------------
# Detect phase
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_landmark_detectors() -> list[type[LandmarkDetector]]:
    """Return landmark detector classes (see :class:`reconstruct.components.LandmarkDetector`).

    Fires when the detect stage resolves ``--detector`` (default: the available detector with the highest
    ``priority`` attribute).
    """


# ---------------------------------------------------------------------------------------------------------------
# Fit phase
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_face_models() -> list[FaceModelSource]:
    """Return face model sources (see :class:`reconstruct.components.FaceModelSource`).

    Fires when the fit stage or ``reconstruct models`` resolves ``--face-model``.
    """


# ---------------------------------------------------------------------------------------------------------------
# Age phase
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_aging_methods() -> list[type[AgingMethod]]:
    """Return aging method classes (see :class:`reconstruct.components.AgingMethod`).

    Fires when ``reconstruct run --method NAME`` or ``reconstruct train NAME`` resolves the method.
    """


# ---------------------------------------------------------------------------------------------------------------
# Render and composite phase
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_renderers() -> list[type[Renderer]]:
    """Return renderer classes (see :class:`reconstruct.components.Renderer`).

    Fires when a stage needs a renderer; ``--renderer auto`` picks the available one with the highest priority.
    """


@hookspec
def register_compositors() -> list[type[Compositor]]:
    """Return compositor classes (see :class:`reconstruct.components.Compositor`)."""


# ---------------------------------------------------------------------------------------------------------------
# Report phase
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def register_report_sections() -> list[type[ReportSection]]:
    """Return QC report section classes (see :class:`reconstruct.components.ReportSection`)."""


# ---------------------------------------------------------------------------------------------------------------
# Lifecycle events (no return value)
# ---------------------------------------------------------------------------------------------------------------
@hookspec
def on_run_start(config: RunConfig, stages: list[str]) -> None:
    """Fires once before ``reconstruct run`` executes anything, with the ordered names of the stages it will visit."""


@hookspec
def on_stage_complete(ctx: StageContext, stage: str, skipped: bool, seconds: float) -> None:
    """Fires after each stage finishes (``skipped`` True when its cached result was reused)."""


@hookspec
def on_run_complete(config: RunConfig, ok: bool) -> None:
    """Fires once when ``reconstruct run`` ends, successfully or not."""
