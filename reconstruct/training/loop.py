"""A small resumable training loop shared by the learned aging methods (FRAN, deepfake).

A method describes one optimisation step in a :class:`TrainTask`; :func:`run_training` owns the rest: seeding,
checkpoints every ``checkpoint_every`` steps (model + optimizer + RNG + step + loss history, see
:mod:`.checkpoint`), ``resume``, progress, loss logging and PNG previews. Because the data sampler draws from a
``torch.Generator`` whose state is checkpointed, a run interrupted at step k and resumed produces exactly the loss
curve of an uninterrupted run (on the same device and thread count).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np
import torch

from ..errors import MethodError
from ..progress import NullProgress, Progress
from ..session import atomic_write_text
from .checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from .images import write_png

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


class TrainTask(Protocol):
    """One method's training problem.

    Attributes:
        modules: name -> network; everything here is checkpointed.
        optimizers: name -> optimizer over those networks; checkpointed too.
    """

    modules: Mapping[str, torch.nn.Module]
    optimizers: Mapping[str, torch.optim.Optimizer]

    def train_step(self, step: int, rng: torch.Generator) -> dict[str, float]:
        """Sample a batch with ``rng`` (CPU generator), take one optimisation step, return named losses."""

    def validate(self) -> dict[str, float]:
        """Losses on held-out data (no gradient); may return {}."""

    def preview(self) -> np.ndarray:
        """A (H, W, 3) uint8 RGB image showing inputs / outputs / targets side by side."""


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Loop settings (not the method's hyper-parameters).

    Attributes:
        steps: total optimisation steps (a resumed run continues up to this number).
        seed: seeds torch's global RNG (network init is the task's, done before) and the data sampler.
        checkpoint_every: steps between checkpoints (also written at the end and on Ctrl-C).
        preview_every: steps between preview PNGs (0: only at the end).
        log_every: steps between loss log lines / ``on_log`` calls.
        validate_every: steps between validations (0: only at the end).
    """

    steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 200
    preview_every: int = 200
    log_every: int = 20
    validate_every: int = 0

    @classmethod
    def from_args(cls, args: Any, steps: int, seed: int) -> "TrainSettings":
        """From ``reconstruct train``'s loop options (missing ones keep their defaults)."""
        d = cls()
        return cls(steps=steps, seed=seed, checkpoint_every=getattr(args, "checkpoint_every", d.checkpoint_every),
                   preview_every=getattr(args, "preview_every", d.preview_every),
                   log_every=getattr(args, "log_every", d.log_every))


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a training run did. ``history``: one dict per step ({"step", loss names...}); ``validation``: the
    last validation losses; ``resumed_from``: step the run started at (0 for a fresh run)."""

    step: int
    history: tuple[dict, ...]
    validation: Mapping[str, float]
    checkpoint: Path
    resumed_from: int
    seconds: float
    steps_per_second: float = float("nan")
    extra: Mapping[str, Any] = field(default_factory=dict)


def settings_from_mapping(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """Build a method's settings dataclass from string or typed values (``fran.size=64`` style when
    ``prefix="fran."``), casting each to its default's type and ignoring other keys; then ``.check()`` it."""
    defaults = cls()
    kw = {}
    for name in cls.__dataclass_fields__:
        key = prefix + name
        if key in values and values[key] is not None:
            typ = type(getattr(defaults, name))
            try:
                kw[name] = typ(values[key])
            except (TypeError, ValueError) as exc:
                raise MethodError(f"option {key}={values[key]!r} is not a valid {typ.__name__}") from exc
    return cls(**kw).check()


def run_training(task: TrainTask, settings: TrainSettings, out_dir: Path, *, resume: bool = False,
                 fresh: bool = False, meta: Mapping[str, Any] | None = None, progress: Progress | None = None,
                 on_log: Callable[[int, Mapping[str, float]], None] | None = None) -> TrainResult:
    """Train ``task`` for ``settings.steps`` steps, checkpointing into ``out_dir``.

    Args:
        resume: continue from ``out_dir/checkpoint.pt`` (error if it is missing or corrupt).
        fresh: discard an existing checkpoint and start over. Without ``resume`` or ``fresh`` an existing
            checkpoint is an error (so a finished training is never silently overwritten).
        meta: JSON-like settings stored in the checkpoint (the method's hyper-parameters).
        on_log: called every ``log_every`` steps with (step, mean losses since the last call).
    """
    progress = progress or NullProgress()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / CHECKPOINT_NAME
    data_rng = torch.Generator().manual_seed(int(settings.seed) + 1)
    torch.manual_seed(int(settings.seed) + 2)
    history: list[dict] = []
    start = 0
    if resume:
        state = read_checkpoint(ckpt)
        start = restore_checkpoint(state, modules=task.modules, optimizers=task.optimizers, data_rng=data_rng,
                                   path=ckpt)
        history = [dict(h) for h in state["history"]][:start]
        log.info("resuming from %s at step %d", ckpt, start)
    elif ckpt.exists() and not fresh:
        raise MethodError(f"{ckpt} already holds a training checkpoint",
                          hint="continue it with --resume, or start over with --fresh")
    else:  # a fresh start: outputs of an earlier training would be misleading beside the new ones
        for old in [*(out_dir / "previews").glob("step_*.png"), out_dir / "loss.csv", out_dir / "validation.json"]:
            old.unlink(missing_ok=True)
    meta = dict(meta or {})
    for m in task.modules.values():
        m.train()

    def checkpoint(step: int) -> None:
        save_checkpoint(ckpt, step=step, modules=task.modules, optimizers=task.optimizers, data_rng=data_rng,
                        history=history, meta=meta)
        rows = ["step," + ",".join(k for k in history[0] if k != "step")] if history else []
        rows += [",".join(f"{v:.6g}" for v in h.values()) for h in history]
        atomic_write_text(out_dir / "loss.csv", "\n".join(rows) + "\n")

    def preview(step: int) -> None:
        with torch.no_grad():
            img = task.preview()
        write_png(out_dir / "previews" / f"step_{step:07d}.png", img)

    validation: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start
    window: dict[str, list[float]] = {}
    try:
        with progress.task(f"train ({meta.get('method', 'model')})", total=settings.steps) as bar:
            bar.advance(start)
            while step < settings.steps:
                losses = task.train_step(step, data_rng)
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise MethodError(f"training diverged at step {step}: {', '.join(bad)} is not finite",
                                      hint="lower the learning rate or the adversarial weight, then --fresh")
                step += 1
                history.append({"step": step, **{k: float(v) for k, v in losses.items()}})
                for k, v in losses.items():
                    window.setdefault(k, []).append(float(v))
                bar.advance()
                if settings.log_every and step % settings.log_every == 0:
                    means = {k: float(np.mean(v)) for k, v in window.items()}
                    window.clear()
                    log.info("step %d/%d %s", step, settings.steps,
                             " ".join(f"{k}={v:.4g}" for k, v in means.items()))
                    if on_log is not None:
                        on_log(step, means)
                if settings.validate_every and step % settings.validate_every == 0:
                    validation = _validate(task)
                if settings.preview_every and step % settings.preview_every == 0:
                    preview(step)
                if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                    checkpoint(step)
    except KeyboardInterrupt:
        checkpoint(step)
        log.warning("training interrupted at step %d; checkpoint saved to %s (continue with --resume)", step, ckpt)
        raise
    seconds = time.perf_counter() - t0
    checkpoint(step)
    preview(step)
    validation = _validate(task)
    if validation:
        atomic_write_text(out_dir / "validation.json", json.dumps({"step": step, **validation}, indent=2) + "\n")
    n = step - start
    sps = n / seconds if seconds > 0 else float("nan")
    return TrainResult(step=step, history=tuple(history), validation=validation, checkpoint=ckpt,
                       resumed_from=start, seconds=seconds, steps_per_second=sps)


def _validate(task: TrainTask) -> dict[str, float]:
    for m in task.modules.values():
        m.eval()
    try:
        with torch.no_grad():
            return {k: float(v) for k, v in task.validate().items()}
    finally:
        for m in task.modules.values():
            m.train()
