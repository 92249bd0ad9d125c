"""Executors run per-item work (``--executor``, :data:`.local.EXECUTORS`): :class:`.local.LocalExecutor` (in process,
threads or ``--jobs`` processes) and :class:`.ray_executor.RayExecutor`; :class:`.resources.Resources` is the
per-run, per-process cache they hand to work functions. Importing this package imports no optional dependency."""
