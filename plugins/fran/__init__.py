"""Built-in plugin ``fran``: the FRAN face re-aging network as an aging method (see docs/methods/fran.md).

Importing this module is cheap (torch is imported when the method trains or runs).
"""

from __future__ import annotations

from reconstruct import hookimpl

from .method import FranMethod


@hookimpl
def register_aging_methods():
    return [FranMethod]
