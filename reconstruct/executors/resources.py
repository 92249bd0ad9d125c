"""The per-run cache of expensive objects a worker builds once and reuses across work items.

A landmark detector, a renderer with its face model, a loaded face model, an opened session: building them for
every frame would cost more than the work. The executor owns one :class:`Resources` per process for the length of
a run -- the driver's (in-process and thread work), one per ``--jobs`` worker process (made by the pool's
initializer) and one per Ray worker process -- and hands it to work functions called with ``resources=True``::

    def detect_view(job, res):
        det = res.get(("detector", job.name), lambda: build_detector(job))
        return det.detect(res.session(job.root).read_image(job.camera, job.file))

``close()`` (called by the executor when the run ends) closes whatever it holds that has a ``close()``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Hashable

log = logging.getLogger(__name__)


class Resources:
    """Per-process, per-run cache: ``get(key, make)`` builds on first use and returns the same object after.

    Args:
        components: the plugin registry to hand out (the driver's); None builds one from the installed entry
            points on first use (a Ray worker, or a worker process that was spawned rather than forked).
    """

    def __init__(self, components: Any = None) -> None:
        self._components = components
        self._items: dict[Hashable, Any] = {}
        self._lock = threading.RLock()

    # a copy sent to another process starts empty: what it caches (detectors, open files) does not travel
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def fresh(self) -> "Resources":
        """An empty cache sharing this one's plugin registry (a forked worker's own)."""
        return Resources(self._components)

    @property
    def components(self) -> Any:
        """The plugin registry for work in this process."""
        with self._lock:
            if self._components is None:
                from ..plugins import make_plugin_manager

                self._components = make_plugin_manager().components()
            return self._components

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The object cached under ``key``, built by ``make()`` the first time."""
        with self._lock:
            if key not in self._items:
                self._items[key] = make()
            return self._items[key]

    def session(self, root: Any) -> Any:
        """The session at ``root``, opened once."""
        from ..session import Session

        return self.get(("session", str(root)), lambda: Session.open(root))

    def face_model(self, name: str) -> Any:
        """The registered face model ``name``, loaded once."""
        return self.components.face_model(name)

    def keep(self, key: Hashable, obj: Any) -> None:
        """Hold ``obj`` for the life of the run (e.g. a thread-limit context that must stay alive)."""
        with self._lock:
            self._items[key] = obj

    def close(self) -> None:
        """Close what has a ``close()`` and forget everything."""
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for obj in items:
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide the run's own outcome
                    log.debug("closing %r failed: %s", obj, exc)
