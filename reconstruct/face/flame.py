"""FLAME 2020 / 2023 loader (``generic_model.pkl``, ``flame2023*.pkl`` or an npz with the same keys), loaded safely.

FLAME's pickles are Python-2 pickles of a dict whose arrays are numpy arrays, ``scipy.sparse`` matrices and
``chumpy.Ch`` objects. :class:`SafeUnpickler` reconstructs *only* numpy arrays/dtypes/scalars, scipy sparse
matrices and plain containers; any ``chumpy`` class becomes an inert :class:`ChumpyStub` whose array (``x``) is
taken out afterwards, so chumpy need not be installed; every other global (``os.system``, ``builtins.eval``,
``subprocess``, ...) is refused with :class:`FaceModelError` before anything runs.

Model: ``v_template`` (V, 3) metres, ``shapedirs`` (V, 3, 300 shape + 100 expression) -> identity (300 modes)
and expression (100 PCA modes, ``expression_kind="pca"``), plus one extra expression mode ``jawOpen``: the
linear-blend-skinning jaw rotation of 0.2 rad per unit weight (FLAME opens the jaw with a joint, not a blendshape).
Model frame: +x to the subject's left, +y up, +z out of the face (FLAME's own).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import FaceModelError
from .model import FaceModel, read_npz

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how Python-3 protocol-2 pickles store bytes (a pure str -> bytes function)
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix"}
JAW_RAD_PER_UNIT = 0.2


class ChumpyStub:
    """Stands in for any chumpy object while unpickling: keeps its state, runs nothing."""

    def __init__(self, *args, **kwargs) -> None:
        self.state = None

    def __setstate__(self, state) -> None:
        self.state = state

    def array(self) -> np.ndarray:
        st = self.state
        if isinstance(st, dict):
            for key in ("x", "_x", "a"):
                v = st.get(key)
                if isinstance(v, np.ndarray):
                    return v
                if isinstance(v, ChumpyStub):
                    return v.array()
        raise FaceModelError("a chumpy object in the model file holds no plain array (a computed chumpy "
                             "expression); export the model's arrays to npz with chumpy installed elsewhere")


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only builds numpy / scipy.sparse objects and chumpy stand-ins."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            import copyreg

            if name == "_reconstructor":
                return copyreg._reconstructor
            if name == "object":
                return object
            if module == "_codecs":
                import codecs

                return codecs.encode
            if int(np.__version__.split(".")[0]) >= 2 and module.startswith("numpy.core"):
                module = "numpy._core" + module[len("numpy.core"):]
            return super().find_class(module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE:
            import scipy.sparse

            return getattr(scipy.sparse, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStub
        raise FaceModelError(f"refusing to load {module}.{name} from a pickle: model files may only hold numpy "
                             "arrays, scipy sparse matrices and chumpy arrays",
                             hint="this file is not a FLAME model, or it has been tampered with")


def safe_load_pickle(data: bytes) -> object:
    """Unpickle ``data`` with :class:`SafeUnpickler` (latin1 for Python-2 pickles)."""
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except FaceModelError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, AttributeError on bad states ...
        raise FaceModelError(f"not a readable model pickle: {type(exc).__name__}: {exc}") from exc


def _plain(v):
    if isinstance(v, ChumpyStub):
        return v.array()
    return v


def read_flame_arrays(path: Path) -> dict:
    """The FLAME dict with chumpy objects replaced by numpy arrays (a pickle via :class:`SafeUnpickler`, or an npz:
    told apart by content, not by name)."""
    path = Path(path)
    hint = "pass FLAME's generic_model.pkl (2020), flame2023.pkl, or an npz of their plain arrays"
    if not path.exists():
        raise FaceModelError(f"{path} does not exist", hint="pass the FLAME generic_model.pkl (or npz) you downloaded")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FaceModelError(f"cannot read {path}: {exc.strerror}") from exc
    if not data:
        raise FaceModelError(f"{path} is not a FLAME model: an empty file", hint=hint)
    if data.startswith(b"PK"):  # a zip archive: an npz
        return read_npz(path, "a FLAME model", hint=hint)
    try:
        obj = safe_load_pickle(data)
    except FaceModelError as exc:
        if exc.message.startswith("refusing"):  # a pickle that would run code: say so, with the file
            raise FaceModelError(f"{path}: {exc.message}", hint=exc.hint) from exc
        raise FaceModelError(f"{path} is not a FLAME model: {exc.message}", hint=hint) from exc
    if not isinstance(obj, dict):
        raise FaceModelError(f"{path} is not a FLAME model: it unpickles to {type(obj).__name__}, not a dict",
                             hint=hint)
    return {k: _plain(v) for k, v in obj.items()}


def _jaw_mode(d: dict, v: np.ndarray) -> np.ndarray | None:
    """Offsets of a 0.2 rad jaw opening by linear blend skinning (joint 2 of FLAME's 5 joints)."""
    W = d.get("weights")
    J = d.get("J")
    if J is None and d.get("J_regressor") is not None:
        J = np.asarray(d["J_regressor"] @ v)
    if W is None or J is None or np.shape(W)[1] < 3:
        return None
    w = np.asarray(W)[:, 2:3]
    a = JAW_RAD_PER_UNIT
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    pj = np.asarray(J)[2]
    rotated = (v - pj) @ Rx.T + pj
    return w * (rotated - v)


def load_flame(path: Path, n_shape: int = 300, n_expression: int = 100) -> FaceModel:
    """Read a FLAME model file into a :class:`FaceModel` (metres; no landmarks: compute them after import)."""
    d = read_flame_arrays(path)
    missing = [k for k in ("v_template", "shapedirs", "f") if k not in d]
    if missing:
        raise FaceModelError(f"{path} is not a FLAME model: missing {', '.join(missing)}",
                             hint="pass FLAME's generic_model.pkl (2020) or flame2023.pkl")
    v = np.asarray(d["v_template"], np.float64)
    sd = np.asarray(d["shapedirs"], np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or sd.shape[:2] != v.shape:
        raise FaceModelError(f"{path}: v_template {v.shape} and shapedirs {sd.shape} do not fit together")
    total = sd.shape[2]
    ns = min(n_shape, total if total <= 300 else 300)
    ne = max(0, min(n_expression, total - 300)) if total > 300 else 0
    identity = np.moveaxis(sd[:, :, :ns], 2, 0)
    expression = np.moveaxis(sd[:, :, 300:300 + ne], 2, 0)
    names = [f"exp{i:03d}" for i in range(ne)]
    jaw = _jaw_mode(d, v)
    if jaw is not None:
        expression = np.concatenate([expression, jaw[None]])
        names.append("jawOpen")
    name = "flame2023" if "2023" in Path(path).name else "flame"
    return FaceModel(name=name, mean=v.astype(np.float32), identity_basis=identity.astype(np.float32),
                     expression_basis=expression.astype(np.float32), triangles=np.asarray(d["f"], np.int32),
                     expression_names=tuple(names), expression_kind="pca", landmarks=MappingProxyType({}),
                     regions=MappingProxyType({}),
                     source=f"{path} (FLAME, MPI-IS; see its licence: FLAME 2020 non-commercial, FLAME 2023 Open "
                            "CC-BY-4.0)")
