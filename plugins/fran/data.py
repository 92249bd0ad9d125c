"""FRAN training data: the same face at several ages, aligned pixel to pixel.

Two sources:

* ``synthetic``: procedural faces (:mod:`reconstruct.training.synthetic_faces`) of many random people, each drawn
  in one pose at several ages. Honest label: these are 2D drawings with procedural ageing marks, not renders of the
  session's actor. (The digital-human pair generator -- the session's fitted face rendered with identity and albedo
  moved toward the young reference -- plugs in here once the render stage provides it; see docs/methods/fran.md.)
* a folder of external pairs, ``DIR/<person>/<age>.png`` (e.g. ``alice/25.png``, ``alice/70.png``), all images of a
  person aligned to each other and of one size; an optional ``DIR/<person>/mask.png`` marks skin (white), else
  the whole image counts as skin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reconstruct.errors import MethodError
from reconstruct.training.align import align_matrix, warp_to_crop
from reconstruct.training.images import read_rgb
from reconstruct.training.synthetic_faces import draw_face, random_identity, random_pose


@dataclass(frozen=True, slots=True, eq=False)
class AgePairs:
    """Images of people at known ages.

    Attributes:
        images: (N, S, S, 3) float32 sRGB in [0, 1].
        skin: (N, S, S) float32 skin mask in [0, 1] (where the age maps are non-zero).
        ages: (N,) float32 ages in years.
        person: (N,) int32 person/group id: images with the same id are aligned to each other.
        source: where they came from (``"synthetic procedural faces"`` or the folder).
    """

    images: np.ndarray
    skin: np.ndarray
    ages: np.ndarray
    person: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def split(self, holdout: int) -> tuple["AgePairs", "AgePairs"]:
        """(train, validation) with the last ``holdout`` persons held out."""
        ids = np.unique(self.person)
        if len(ids) <= holdout:
            raise MethodError(f"{len(ids)} persons in {self.source}: too few to hold {holdout} out for validation",
                              hint="add more persons or lower the number of validation persons")
        val = np.isin(self.person, ids[len(ids) - holdout:])
        pick = lambda m: AgePairs(self.images[m], self.skin[m], self.ages[m], self.person[m], self.source)  # noqa
        return pick(~val), pick(val)

    def groups(self) -> list[np.ndarray]:
        """Indices of each person's images, youngest first (persons with at least two ages only)."""
        out = []
        for pid in np.unique(self.person):
            idx = np.flatnonzero(self.person == pid)
            if len(np.unique(self.ages[idx])) >= 2:
                out.append(idx[np.argsort(self.ages[idx])])
        return out


def synthetic_pairs(persons: int, size: int, ages=(20, 35, 50, 65, 80), seed: int = 0,
                    coverage: float = 1.6) -> AgePairs:
    """``persons`` random procedural people, each in one random pose, drawn at every age of ``ages`` and aligned
    to the 5-point template (``coverage``) exactly as inference aligns plate faces."""
    rng = np.random.default_rng(seed)
    imgs, skins, ag, pid = [], [], [], []
    draw = int(round(size * 1.25))
    for p in range(persons):
        idn = random_identity(rng)
        pose = random_pose(rng)
        bg = int(rng.integers(1 << 30))
        for age in ages:
            f = draw_face(idn, pose, float(age), draw, background_seed=bg)
            M = align_matrix(f.points5, size, coverage)
            imgs.append(warp_to_crop(f.image, M, size))
            skins.append(warp_to_crop(f.skin_mask, M, size))
            ag.append(age)
            pid.append(p)
    return AgePairs(np.stack(imgs), np.stack(skins), np.array(ag, np.float32), np.array(pid, np.int32),
                    "synthetic procedural faces")


def folder_pairs(root: Path, size: int | None = None) -> AgePairs:
    """Read ``root/<person>/<age>.png`` (see module docstring), resized to ``size`` when given."""
    root = Path(root)
    if not root.is_dir():
        raise MethodError(f"pair folder {root} does not exist", hint="expected DIR/<person>/<age>.png")
    imgs, skins, ag, pid = [], [], [], []
    persons = sorted(d for d in root.iterdir() if d.is_dir())
    for p, d in enumerate(persons):
        files = sorted(f for f in d.iterdir() if re.fullmatch(r"\d+(\.\d+)?\.(png|jpg|jpeg)", f.name.lower()))
        if len(files) < 2:
            raise MethodError(f"{d} holds {len(files)} age image(s); a person needs at least two ages",
                              hint="name images by age, e.g. 25.png and 70.png")
        mask_file = d / "mask.png"
        mask = None
        if mask_file.exists():
            mask = read_rgb(mask_file).mean(-1)
        shape = None
        for f in files:
            img = read_rgb(f)
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise MethodError(f"{f} is {img.shape[1]}x{img.shape[0]} but {files[0].name} is "
                                  f"{shape[1]}x{shape[0]}", hint="a person's images must be aligned and equally sized")
            m = np.ones(img.shape[:2], np.float32) if mask is None else mask
            if size is not None:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
                m = cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)
            imgs.append(img)
            skins.append(m.astype(np.float32))
            ag.append(float(f.name.rsplit(".", 1)[0]))
            pid.append(p)
    if not imgs:
        raise MethodError(f"no persons in {root}", hint="expected DIR/<person>/<age>.png")
    sizes = {i.shape for i in imgs}
    if len(sizes) > 1:
        raise MethodError(f"images in {root} have different sizes {sorted(sizes)}", hint="pass a training size")
    return AgePairs(np.stack(imgs), np.stack(skins), np.array(ag, np.float32), np.array(pid, np.int32), str(root))
