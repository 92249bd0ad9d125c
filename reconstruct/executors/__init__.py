"""Executors other than the in-process :class:`reconstruct.engine.LocalExecutor` (chosen with ``--executor``; see
:data:`reconstruct.engine.EXECUTORS`). Importing this package imports no optional dependency."""
