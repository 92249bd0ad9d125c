"""Resumable training checkpoints: model, optimizer, RNG states and step in one file.

A checkpoint is a ``torch.save`` dict read back with ``weights_only=True`` (no arbitrary unpickling)::

    {"format": "deage-checkpoint-1", "step": int, "modules": {name: state_dict},
     "optimizers": {name: state_dict}, "rng": {"torch": ByteTensor, "data": ByteTensor, "cuda": [ByteTensor]},
     "history": [{"step": int, <loss name>: float, ...}], "meta": {JSON-like settings}}

Writes are atomic (temporary file + rename), so a run killed while saving leaves the previous checkpoint. A file
that cannot be read (truncated, overwritten, not a checkpoint) raises :class:`~reconstruct.errors.MethodError`
naming the file and what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import MethodError
from ..session import atomic_path

log = logging.getLogger(__name__)

FORMAT = "deage-checkpoint-1"


def save_checkpoint(path: Path, *, step: int, modules: Mapping[str, torch.nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], data_rng: torch.Generator,
                    history: list[dict], meta: Mapping[str, Any]) -> None:
    """Write everything needed to continue training exactly where it stopped (atomically)."""
    rng = {"torch": torch.get_rng_state(), "data": data_rng.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {"format": FORMAT, "step": int(step),
             "modules": {k: m.state_dict() for k, m in modules.items()},
             "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
             "rng": rng, "history": list(history), "meta": dict(meta)}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    log.debug("checkpoint step %d written to %s", step, path)


def read_checkpoint(path: Path) -> dict:
    """Load a checkpoint dict (on CPU). Raises MethodError when the file is missing, corrupt or not ours."""
    path = Path(path)
    if not path.exists():
        raise MethodError(f"checkpoint {path} does not exist",
                          hint="train first (`reconstruct train <method> <session>`), or drop --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, wrong format: all mean the same to the user
        raise MethodError(f"checkpoint {path} is corrupt or not a training checkpoint ({type(exc).__name__}: {exc})",
                          hint=f"delete {path} and train again (`reconstruct train <method> <session> --fresh`), "
                               "or restore it from a backup") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MethodError(f"checkpoint {path} is not a {FORMAT} file",
                          hint=f"delete {path} and train again with `reconstruct train <method> <session> --fresh`")
    return state


def restore_checkpoint(state: dict, *, modules: Mapping[str, torch.nn.Module],
                       optimizers: Mapping[str, torch.optim.Optimizer] | None, data_rng: torch.Generator | None,
                       path: Path | str = "checkpoint") -> int:
    """Load states into live objects; returns the step the checkpoint was taken at."""
    try:
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in (optimizers or {}).items():
            o.load_state_dict(state["optimizers"][k])
        if data_rng is not None:
            torch.set_rng_state(state["rng"]["torch"])
            data_rng.set_state(state["rng"]["data"])
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise MethodError(f"checkpoint {path} does not match this network ({type(exc).__name__}: {exc})",
                          hint="it was trained with other settings (sizes, channels); train again with --fresh "
                               "or pass the settings it was trained with") from exc
    return int(state["step"])


def trained_checkpoint(ctx, what: str, train_command: str) -> Path:
    """The method's checkpoint in ``ctx.work_dir`` (see :data:`reconstruct.training.loop.CHECKPOINT_NAME`), or a
    MethodError saying how to train it. ``what`` names the model; ``train_command`` is the command to run, with
    ``{session}`` standing for the session folder."""
    from .loop import CHECKPOINT_NAME

    ckpt = Path(ctx.work_dir) / CHECKPOINT_NAME
    if not ckpt.exists():
        session = getattr(ctx.session, "root", "SESSION")
        raise MethodError(f"{what} is not trained for this session ({ckpt} is missing)",
                          hint=f"train it first: `{train_command.format(session=session)}`")
    return ckpt


def checkpoint_digest(work_dir: Path) -> str | None:
    """sha256 of the method's checkpoint (part of the age stage's cache key), None when untrained."""
    from ..hashing import file_digest
    from .loop import CHECKPOINT_NAME

    ckpt = Path(work_dir) / CHECKPOINT_NAME
    return file_digest([ckpt]) if ckpt.exists() else None
