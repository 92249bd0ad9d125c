"""Which expression modes move which part of the face, from the model itself (no mode names typed in)."""

from __future__ import annotations

import functools

import numpy as np

from ..face.model import FaceModel

#: a mode belongs to the mouth when at least this share of its squared landmark motion is on the mouth's landmarks
MOUTH_SHARE = 0.3


@functools.lru_cache(maxsize=2)  # every fit of a take asks (FitSettings.mouth_relief); ~20 ms each on ICT
def mouth_modes(model: FaceModel, scheme: str = "mediapipe478", share: float = MOUTH_SHARE) -> tuple[int, ...]:
    """Expression modes whose motion at the ``scheme`` landmarks is mostly on the mouth group (the QC report's
    ``mouth`` landmarks: lips) plus the chin below it (landmarks lower than the lower lip in the mean shape): the
    jaw and lip modes (on ICT: jawOpen, mouthSmile, mouthFunnel, ...). Empty for a scheme without a mouth group.
    Cached per model object (a :class:`FaceModel` hashes by identity)."""
    from .scoring import landmark_groups

    groups = landmark_groups(scheme)
    if groups is None or scheme not in model.landmarks:
        return ()
    lm = model.landmark_map(scheme)
    ok = lm.triangle >= 0
    mean = lm.points(model.mean.astype(np.float64), model.triangles)
    mouth = np.zeros(len(ok), bool)
    mouth[groups["mouth"]] = True
    mouth |= ok & (mean[:, 1] < np.nanmin(mean[groups["mouth"], 1]))  # the chin under the lips moves with the jaw
    out = []
    for k, b in enumerate(model.expression_basis):
        d = (lm.points(model.mean + b, model.triangles) - mean)[ok]
        e = (d ** 2).sum(1)
        if e.sum() > 0 and e[mouth[ok]].sum() >= share * e.sum():
            out.append(k)
    return tuple(out)
