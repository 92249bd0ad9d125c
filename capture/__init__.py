"""On-set half of the de-aging system: camera nodes, recorder, trigger, sync, the ``capture`` CLI."""

__version__ = "0.1.0"
