"""Small deterministic stages for engine tests (registered directly, not through entry points)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from reconstruct import hookimpl


def _bump(ctx, name: str) -> None:
    # Count executions in a file outside out/ so tests can see what was recomputed.
    with open(ctx.session.root / f"runs-{name}.log", "a") as f:
        f.write("1\n")


@dataclass(frozen=True)
class NumbersSettings:
    scale: int = 1


class Numbers:
    name = "numbers"
    requires = ("sync",)
    version = "1"
    Settings = NumbersSettings

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out: Path) -> None:
        _bump(ctx, self.name)
        scale = ctx.settings[self.name].scale
        fsets = ctx.session.read_sync()
        (out / "numbers.txt").write_text("\n".join(str(f.t_ns % 1000 * scale) for f in fsets))


class Squares:
    name = "squares"
    requires = ("numbers",)
    version = "1"

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out: Path) -> None:
        _bump(ctx, self.name)
        nums = (ctx.stage_dir("numbers") / "numbers.txt").read_text().split()
        for i, n in enumerate(nums):
            (out / f"{i:04d}.txt").write_text(str(int(n) ** 2))
            if os.environ.get("SLOW_SQUARES") and i == 2:
                Path(os.environ["SLOW_SQUARES"]).write_text("mid-stage")
                time.sleep(60)


class StagesPlugin:
    @hookimpl
    def register_stages(self):
        return [Numbers(), Squares()]


class Misspelled:
    @hookimpl
    def register_stagez(self):  # a typo: must fail loudly with the plugin's name
        return []


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def on_stage_complete(self, ctx, stage, skipped, seconds):
        self.calls.append((stage, skipped))


class NoFitStage:
    """Stands in for the fit stage where a test exercises later stages (the age stage requires a fit) on frames
    without faces or with methods that need none: it writes no fits, so methods receive ``frame.fit = None``. It
    replaces the built-in fit stage when both are registered."""

    name = "fit"
    requires = ("sync",)
    version = "test"
    replaces = True

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out: Path) -> None:
        (out / "NO-FIT.txt").write_text("test stand-in: no fit computed\n")


class NoFitPlugin:
    @hookimpl
    def register_stages(self):
        return [NoFitStage()]
