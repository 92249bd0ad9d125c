"""Post-production half of the de-aging system: calibrate, fit, age, render, composite, report.

Plugins import :data:`hookimpl` from here::

    from reconstruct import hookimpl
"""

from .plugins import hookimpl, make_plugin_manager

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "make_plugin_manager"]
