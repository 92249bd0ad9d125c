"""Session directory model: the one door through which session files are read and written."""

from .atomic import (atomic_path, atomic_replace_dir, atomic_write_bytes, atomic_write_json, atomic_write_text,
                     wait_removals)
from .frames import FrameLog, FrameRecord
from .store import SCHEMA_VERSION, STAGE_FILE, ConsentRecord, FrameSet, Session, SessionMeta

__all__ = [
    "SCHEMA_VERSION", "STAGE_FILE", "ConsentRecord", "FrameLog", "FrameRecord", "FrameSet", "Session", "SessionMeta",
    "atomic_path", "atomic_replace_dir", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
    "wait_removals",
]
