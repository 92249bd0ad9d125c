"""Shared training utilities for the learned aging methods: resumable loop and checkpoints (:mod:`.loop`,
:mod:`.checkpoint`), losses without downloaded weights (:mod:`.losses`), 5-point face alignment
(:mod:`.align`), procedural synthetic faces with known ages and identities (:mod:`.synthetic_faces`) and image
helpers (:mod:`.images`). Importing this package imports torch."""

from .checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from .loop import CHECKPOINT_NAME, TrainResult, TrainSettings, TrainTask, run_training

__all__ = ["CHECKPOINT_NAME", "TrainResult", "TrainSettings", "TrainTask", "read_checkpoint", "restore_checkpoint",
           "run_training", "save_checkpoint"]
