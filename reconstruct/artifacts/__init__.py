"""What stages hand each other, as typed values with their file formats: one module per artifact, each with
``save``/``load`` (on the pattern of :mod:`reconstruct.fitting.result`). Stages and methods read each other's
outputs only through these, never by importing another plugin.

| artifact | written by | file | module |
|---|---|---|---|
| :class:`Detections` (+ :class:`HeroLandmarks`) | detect | ``out/detect/landmarks.npz`` | :mod:`.detections` |
| :class:`~reconstruct.fitting.result.FitSequence` | fit | ``out/fit/fits.npz`` | :mod:`reconstruct.fitting.result` |
| world-frame meshes | fit | ``out/fit/meshes/<frame>.ply`` | :mod:`.meshes` (writing) |
| :class:`~reconstruct.methods.FaceEdit` | age | ``out/age/<frame>.npz`` | :mod:`.edits` |
| :class:`RenderedFace` | render | ``out/render/<frame>.npz`` | :mod:`.renders` |
| plates | composite | ``out/plates/<camera>/<frame>.png|.exr`` | :mod:`.plates` (reading), :mod:`reconstruct.composite.outputs` (writing) |
"""

from .detections import Detections, HeroLandmarks
from .edits import edit_path, load_edit, save_edit
from .plates import plate_paths, read_plate
from .renders import RenderedFace

__all__ = ["Detections", "HeroLandmarks", "RenderedFace", "edit_path", "load_edit", "plate_paths", "read_plate",
           "save_edit"]
