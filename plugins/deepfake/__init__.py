"""Built-in plugin ``deepfake``: a two-decoder face-swap autoencoder as an aging method (docs/methods/deepfake.md).

Importing this module is cheap (torch is imported when the method trains or runs).
"""

from __future__ import annotations

from reconstruct import hookimpl

from .method import DeepfakeMethod


@hookimpl
def register_aging_methods():
    return [DeepfakeMethod]
