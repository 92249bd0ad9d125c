"""Resumable training loop: resume reproduces the loss curve, Ctrl-C saves, corrupt checkpoints are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deage_plugins.fran.data import synthetic_pairs
from deage_plugins.fran.train import FranSettings, FranTask, load_generator
from reconstruct.errors import MethodError
from reconstruct.training import TrainSettings, read_checkpoint, run_training


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and fast on a shared 2-core machine
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def pairs():
    return synthetic_pairs(5, 16, ages=(20, 60), seed=3).split(1)


def tiny_task(pairs, seed=0):
    s = FranSettings(size=16, crop=16, width=4, depth=2, batch=2, seed=seed, window=16, stride=8,
                     w_adversarial=0.05).check()  # the GAN is on: both optimizers and the D's RNG use are covered
    return FranTask(s, *pairs)


def loop(steps, every=5):
    return TrainSettings(steps=steps, seed=0, checkpoint_every=every, preview_every=every, log_every=5)


def curve(result):
    return np.array([[h[k] for k in ("loss", "l1", "perceptual", "adversarial", "discriminator")]
                     for h in result.history])


def test_resume_continues_the_same_loss_curve(tmp_path, pairs):
    full = run_training(tiny_task(pairs), loop(12), tmp_path / "full")
    first = run_training(tiny_task(pairs), loop(6, every=3), tmp_path / "split")
    assert first.step == 6
    # a new process would rebuild the task from scratch (fresh random init) and then resume
    resumed = run_training(tiny_task(pairs, seed=99), loop(12), tmp_path / "split", resume=True)
    assert resumed.resumed_from == 6 and resumed.step == 12
    a, b = curve(full), curve(resumed)
    assert a.shape == b.shape == (12, 5)
    # exact on CPU with one thread (measured max |diff| = 0.0); tolerance only for float summation order
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert (tmp_path / "split" / "loss.csv").read_text().count("\n") == 13
    assert sorted(p.name for p in (tmp_path / "split" / "previews").glob("*.png"))[-1] == "step_0000012.png"


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path, pairs):
    class Interrupting:
        def __init__(self, task, at):
            self.t, self.at = task, at
            self.modules, self.optimizers = task.modules, task.optimizers

        def train_step(self, step, rng):
            if step == self.at:
                raise KeyboardInterrupt
            return self.t.train_step(step, rng)

        def validate(self):
            return self.t.validate()

        def preview(self):
            return self.t.preview()

    full = run_training(tiny_task(pairs), loop(8, every=100), tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_training(Interrupting(tiny_task(pairs), 5), loop(8, every=100), tmp_path / "int")
    assert read_checkpoint(tmp_path / "int" / "checkpoint.pt")["step"] == 5
    resumed = run_training(tiny_task(pairs), loop(8, every=100), tmp_path / "int", resume=True)
    np.testing.assert_allclose(curve(resumed), curve(full), rtol=1e-6, atol=1e-7)


def test_existing_checkpoint_needs_resume_or_fresh(tmp_path, pairs):
    run_training(tiny_task(pairs), loop(2), tmp_path)
    with pytest.raises(MethodError, match="--resume"):
        run_training(tiny_task(pairs), loop(2), tmp_path)
    again = run_training(tiny_task(pairs), loop(2), tmp_path, fresh=True)
    assert again.resumed_from == 0


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, pairs, damage):
    run_training(tiny_task(pairs), loop(2), tmp_path)
    ck = tmp_path / "checkpoint.pt"
    data = ck.read_bytes()
    ck.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 50, "empty": b""}[damage])
    with pytest.raises(MethodError, match="corrupt") as exc:
        run_training(tiny_task(pairs), loop(4), tmp_path, resume=True)
    assert str(ck) in exc.value.message and "--fresh" in exc.value.hint
    with pytest.raises(MethodError, match="corrupt"):
        load_generator(ck)


def test_missing_and_mismatched_checkpoints(tmp_path, pairs):
    with pytest.raises(MethodError, match="does not exist"):
        run_training(tiny_task(pairs), loop(2), tmp_path, resume=True)
    run_training(tiny_task(pairs), loop(2), tmp_path)
    s = FranSettings(size=16, crop=16, width=8, depth=2, batch=2).check()  # other width: other tensor shapes
    with pytest.raises(MethodError, match="does not match"):
        run_training(FranTask(s, *pairs), loop(4), tmp_path, resume=True)
