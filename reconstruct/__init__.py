"""Post-production half of the de-aging system: calibrate, fit, age, render, composite, report.

Plugins import :data:`hookimpl` from here::

    from reconstruct import hookimpl
"""

from .blas_threads import idle_blas_threads_sleep

idle_blas_threads_sleep()  # before numpy is loaded (reconstruct/blas_threads.py)

from .plugins import hookimpl, make_plugin_manager  # noqa: E402

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "make_plugin_manager"]
