"""Multi-view 3DMM fitting (detect -> fit). The output contract is :mod:`.result`."""

from .result import FitSequence, FrameFit, load_fits, save_fits

_LAZY = {"fit_sequence": ".fit", "world_vertices": ".fit", "FitSettings": ".solver", "FitSolution": ".solver"}


def __getattr__(name: str):
    """The solver imports torch: load it only when asked for (``reconstruct.fitting.result`` stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FitSequence", "FitSettings", "FitSolution", "FrameFit", "fit_sequence", "load_fits", "save_fits",
           "world_vertices"]
