"""Provenance of output files: what made them, from what, under which consent.

Every image the pipeline writes for a user (hero plates, renders, composites) carries a :class:`ProvenanceRecord`
inside the file -- a PNG ``iTXt`` chunk or an OpenEXR header attribute, both under the key :data:`PROVENANCE_KEY`
-- and the session keeps a manifest (``out/manifest.json``: every output file -> its record and sha256).

Writers for stages::

    from reconstruct.provenance import record_for_stage, write_png, write_exr

    rec = record_for_stage(ctx, "composite", settings={"feather_px": 8}, inputs=[plate_path])
    write_png(ctx.session, out / "hero" / "000001.png", rgb_uint8, rec)   # file + manifest entry
    write_exr(ctx.session, out / "hero" / "000001.exr", rgb_float32, rec)

The lower-level :func:`png_with_provenance` / :func:`exr_with_provenance` write a file only;
:func:`record_output` adds a manifest entry for any file (npz, json ...). Readers: :func:`read_png_provenance`,
:func:`read_exr_provenance`, :func:`read_provenance` (by suffix), :func:`read_manifest`.

Paths inside a stage's temporary folder (``out/.<stage>.tmp/...``, see :mod:`reconstruct.engine`) are recorded
under their final name (``out/<stage>/...``): the engine renames the folder when the stage returns.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import numpy as np

from .errors import ConfigError, SessionError
from .hashing import sha256_file
from .session import atomic_path, atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from .stage import StageContext
    from .plugins import PluginHost
    from .session import ConsentRecord, Session

log = logging.getLogger(__name__)

PROVENANCE_KEY = "deage:provenance"
MANIFEST_NAME = "manifest.json"
RECORD_SCHEMA = 1
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_TMP_STAGE = re.compile(r"^\.(?P<name>[^/]+)\.tmp$")


@dataclass(frozen=True, slots=True)
class ProvenanceRecord:
    """Where one output file came from. JSON round-trips through :meth:`to_json` / :meth:`from_json`.

    Attributes:
        method: aging method name, or None when no method ran (plain reconstruction, calibration renders).
        stage: the stage that wrote the file (``"composite"``, ``"render"`` ...), "" when not written by a stage.
        plugins: ``(plugin name, "distribution version")`` of every loaded plugin, sorted by name.
        settings: the writer's settings and the run's options (JSON-serialisable, read-only).
        inputs: ``(path, sha256 hex)`` of the input files, paths relative to the session root (posix), sorted.
        tool_version: version of the ``deage`` distribution that wrote the file.
        created: ISO 8601 UTC time the record was made.
        session: session name (``[session] name`` of session.toml).
        consent: one line per consent record of the session (performer, reference, granted by, date, scope).
        schema: record format version.
    """

    method: str | None
    stage: str
    plugins: tuple[tuple[str, str], ...]
    settings: Mapping[str, Any]
    inputs: tuple[tuple[str, str], ...]
    tool_version: str
    created: str
    session: str
    consent: tuple[str, ...] = ()
    schema: int = RECORD_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__}  # asdict() cannot copy a mappingproxy
        d["plugins"] = {n: v for n, v in self.plugins}
        d["settings"] = _plain(self.settings)
        d["inputs"] = {p: h for p, h in self.inputs}
        d["consent"] = list(self.consent)
        return d

    def to_json(self) -> str:
        """Compact, key-sorted JSON (the exact text stored in files)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=_json_default)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ProvenanceRecord":
        try:
            return cls(method=d.get("method"), stage=d.get("stage", ""),
                       plugins=tuple(sorted((str(k), str(v)) for k, v in dict(d.get("plugins", {})).items())),
                       settings=MappingProxyType(dict(d.get("settings", {}))),
                       inputs=tuple(sorted((str(k), str(v)) for k, v in dict(d.get("inputs", {})).items())),
                       tool_version=str(d["tool_version"]), created=str(d["created"]), session=str(d["session"]),
                       consent=tuple(d.get("consent", ())), schema=int(d.get("schema", RECORD_SCHEMA)))
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionError(f"malformed provenance record: {exc}",
                               hint="the file was written by another tool or was edited by hand") from exc

    @classmethod
    def from_json(cls, text: str) -> "ProvenanceRecord":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SessionError(f"provenance record is not JSON: {exc}") from exc


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, (Path, tuple, set, frozenset)):
        return str(o) if isinstance(o, Path) else list(o)
    if isinstance(o, Mapping):
        return dict(o)
    return repr(o)


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=_json_default))


# -- building records ------------------------------------------------------------------------------------------
def tool_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("deage")
    except metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def sha256_files(paths: Iterable[str | Path]) -> list[str]:
    """:func:`sha256_file` of each path, in order, on one thread per usable CPU core (hashlib releases the GIL
    while it hashes a large buffer: a stage's hundreds of MB of frames hash in half the time on 2 cores)."""
    from .executors.local import available_cores

    paths = list(paths)
    cores = available_cores()
    if len(paths) < 2 or cores < 2:
        return [sha256_file(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(cores, len(paths))) as pool:
        return list(pool.map(sha256_file, paths))


def session_relative(session_root: Path, path: str | Path) -> str:
    """``path`` relative to the session root as posix text (absolute when outside), with a temporary folder
    ``.<name>.tmp`` under ``out/`` (a stage's ``out/.<stage>.tmp``, a method's ``out/plates/.<method>.tmp``) mapped
    to its final name."""
    p = Path(path).resolve()
    try:
        rel = p.relative_to(Path(session_root).resolve())
    except ValueError:
        return p.as_posix()
    parts = list(rel.parts)
    if len(parts) >= 2 and parts[0] == "out":
        for i in range(1, len(parts) - 1):
            m = _TMP_STAGE.match(parts[i])
            if m:
                parts[i] = m.group("name")
                break
    return "/".join(parts)


def consent_summary(record: "ConsentRecord") -> str:
    doc = f"; document {record.document}" if record.document else ""
    return (f"{record.performer}: {record.reference} (granted by {record.granted_by}, {record.date}; "
            f"scope {','.join(record.scope)}{doc})")


def plugin_versions(host: "PluginHost | None") -> tuple[tuple[str, str], ...]:
    if host is None:
        return ()
    return tuple(sorted((i.name, f"{i.distribution} {i.version}".strip()) for i in host.infos.values()
                        if i.status == "loaded"))


def make_record(session: "Session", *, stage: str = "", method: str | None = None,
                host: "PluginHost | None" = None, settings: Mapping[str, Any] | None = None,
                inputs: Iterable[str | Path] = (), created: str | None = None) -> ProvenanceRecord:
    """Build a record for files written now. ``inputs`` are hashed (a missing input raises SessionError)."""
    hashed = []
    for p in inputs:
        p = Path(p)
        if not p.is_file():
            raise SessionError(f"provenance input {p} does not exist", hint="pass the files the output was made from")
        hashed.append((session_relative(session.root, p), sha256_file(p)))
    return ProvenanceRecord(
        method=method, stage=stage, plugins=plugin_versions(host),
        settings=MappingProxyType(_plain(settings or {})), inputs=tuple(sorted(hashed)),
        tool_version=tool_version(),
        created=created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        session=session.meta.name, consent=tuple(consent_summary(c) for c in session.meta.consent))


def record_for_stage(ctx: "StageContext", stage: str, settings: Mapping[str, Any] | None = None,
                     inputs: Iterable[str | Path] = ()) -> ProvenanceRecord:
    """A record for a stage's outputs: method, plugins and run options from the stage context, plus the stage's
    own ``settings`` (they win over run options of the same key) and its ``inputs``."""
    merged = {"run_options": dict(ctx.config.options), "device": ctx.config.device, **dict(settings or {})}
    return make_record(ctx.session, stage=stage, method=ctx.config.method, host=ctx.host, settings=merged,
                       inputs=inputs)


# -- PNG ---------------------------------------------------------------------------------------------------------
def _itxt(key: str, text: str) -> bytes:
    from .png import png_chunk

    # iTXt: keyword, NUL, compression flag, compression method, language tag NUL, translated keyword NUL, text
    body = zlib.compress(text.encode("utf-8"), 9)
    return png_chunk(b"iTXt", key.encode("latin-1") + b"\x00" + b"\x01\x00" + b"\x00" + b"\x00" + body)


def _iter_png_chunks(data: bytes, where: str) -> Iterator[tuple[bytes, bytes, int]]:
    if not data.startswith(_PNG_SIG):
        raise SessionError(f"{where} is not a PNG file")
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        end = pos + 12 + n
        yield kind, body, end
        if kind == b"IEND":
            return
        pos = end
    raise SessionError(f"{where}: truncated PNG", hint="the file was cut short; rerun the stage that wrote it")


def encode_png(image: np.ndarray, record: ProvenanceRecord | None, where: str = "image") -> bytes:
    """PNG bytes of an RGB/RGBA/gray uint8 or uint16 image with the record in an iTXt chunk after IHDR
    (:func:`reconstruct.png.encode_png`); ``record=None``: a plain PNG, the same encoder without the chunk. The
    one door for the deliverables' PNGs (every writer with or without provenance calls this)."""
    from .png import encode_png as _encode

    chunks = () if record is None else (_itxt(PROVENANCE_KEY, record.to_json()),)
    return _encode(image, chunks=chunks, where=where)


def png_with_provenance(path: str | Path, image: np.ndarray, record: ProvenanceRecord, sync: bool = True) -> Path:
    """Write ``image`` (RGB/RGBA (H, W, 3|4) or gray (H, W), uint8/uint16) as PNG with the record embedded,
    atomically (``sync``: see :func:`reconstruct.session.atomic_path`). Returns the path. Does not touch the
    manifest (see :func:`write_png`)."""
    atomic_write_bytes(Path(path), encode_png(image, record, str(path)), sync=sync)
    return Path(path)


def add_png_provenance(path: str | Path, record: ProvenanceRecord) -> bool:
    """Embed ``record`` into an existing PNG that has none (chunk inserted after IHDR; pixels untouched, file
    replaced atomically). Returns False when the file already holds a record."""
    path = Path(path)
    if read_png_provenance(path) is not None:
        return False
    data = path.read_bytes()
    atomic_write_bytes(path, data[:33] + _itxt(PROVENANCE_KEY, record.to_json()) + data[33:])
    return True


def read_png_provenance(path: str | Path) -> ProvenanceRecord | None:
    """The record stored in a PNG (None when the file has none)."""
    path = Path(path)
    data = path.read_bytes()
    for kind, body, _ in _iter_png_chunks(data, str(path)):
        if kind == b"iTXt":
            key, rest = body.split(b"\x00", 1)
            if key.decode("latin-1") != PROVENANCE_KEY:
                continue
            compressed = rest[0] == 1
            _lang, _tkey, text = rest[2:].split(b"\x00", 2)
            return ProvenanceRecord.from_json((zlib.decompress(text) if compressed else text).decode("utf-8"))
        if kind == b"tEXt":
            key, text = body.split(b"\x00", 1)
            if key.decode("latin-1") == PROVENANCE_KEY:
                return ProvenanceRecord.from_json(text.decode("latin-1"))
    return None


# -- EXR ---------------------------------------------------------------------------------------------------------
def _openexr():
    import OpenEXR  # a declared dependency

    return OpenEXR


def exr_with_provenance(path: str | Path, image: np.ndarray, record: ProvenanceRecord, half: bool = False,
                        compression: str = "ZIP", sync: bool = True) -> Path:
    """Write a float image (RGB (H, W, 3), RGBA (H, W, 4) or one channel (H, W); linear light) as a scanline EXR
    whose header holds the record as the string attribute ``deage:provenance``. ``half=True`` stores 16-bit floats;
    ``compression``: a lossless OpenEXR scheme by name (``ZIP``, ``PIZ``, ``RLE``, ``NO``). Atomic (``sync``: see
    :func:`reconstruct.session.atomic_path`). Returns the path."""
    OpenEXR = _openexr()
    path = Path(path)
    img = np.asarray(image)
    if img.dtype.kind != "f":
        raise ConfigError(f"{path}: EXR needs float pixels, got {img.dtype}", hint="convert with img.astype(np.float32)")
    img = np.ascontiguousarray(img.astype(np.float16 if half else np.float32, copy=False))
    if img.ndim == 2:
        channels = {"Y": img}
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        channels = {"RGB" if img.shape[2] == 3 else "RGBA": img}
    else:
        raise ConfigError(f"{path}: image shape {img.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    header = {"compression": getattr(OpenEXR, f"{compression}_COMPRESSION"), "type": OpenEXR.scanlineimage,
              PROVENANCE_KEY: record.to_json()}
    try:
        with atomic_path(path, suffix=".exr", sync=sync) as tmp:
            OpenEXR.File(header, channels).write(str(tmp))
    except (OSError, RuntimeError) as exc:
        raise SessionError(f"cannot write {path}: {exc}", hint="check free disk space") from exc
    return path


def read_exr(path: str | Path) -> np.ndarray:
    """Pixels of an EXR written by :func:`exr_with_provenance`: (H, W, C) or (H, W) float32."""
    OpenEXR = _openexr()
    with OpenEXR.File(str(path)) as f:
        ch = f.channels()
        for name in ("RGB", "RGBA", "Y"):
            if name in ch:
                return np.asarray(ch[name].pixels, dtype=np.float32)
        first = next(iter(ch.values()))
        return np.asarray(first.pixels, dtype=np.float32)


def read_exr_provenance(path: str | Path) -> ProvenanceRecord | None:
    OpenEXR = _openexr()
    try:
        with OpenEXR.File(str(path)) as f:
            text = f.header().get(PROVENANCE_KEY)
    except Exception as exc:  # OpenEXR raises plain RuntimeError/Exception on bad files
        raise SessionError(f"cannot read EXR {path}: {exc}") from exc
    return None if text is None else ProvenanceRecord.from_json(str(text))


def read_provenance(path: str | Path) -> ProvenanceRecord | None:
    """The record embedded in a PNG or EXR (by suffix); None for other files or files without one."""
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        return read_png_provenance(path)
    if suffix == ".exr":
        return read_exr_provenance(path)
    return None


# -- manifest ----------------------------------------------------------------------------------------------------
def manifest_path(session: "Session") -> Path:
    return session.root / "out" / MANIFEST_NAME


@contextmanager
def _manifest_lock(session: "Session") -> Iterator[None]:
    lock = session.root / "out" / ".manifest.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # serialises writers across processes (and NFS clients with lockd)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _file_state(path: Path) -> dict[str, int]:
    """What a manifest entry keeps of a file's state besides its digest: its size, and its modification time and
    inode, so that a later record tells a file it already hashed from one rewritten since with the same size."""
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _unchanged(entry: Mapping[str, Any] | None, state: Mapping[str, int]) -> bool:
    """True when ``entry`` was recorded for the file in ``state`` as it is now (entries of older manifests, without
    modification time and inode, are never taken as unchanged: the file is hashed again)."""
    return entry is not None and all(entry.get(k) == v for k, v in state.items())


def read_manifest(session: "Session") -> dict[str, dict[str, Any]]:
    """``out/manifest.json`` as {session-relative path: {"sha256", "bytes", "mtime_ns", "inode", "provenance"}}
    (empty when absent)."""
    p = manifest_path(session)
    if not p.exists():
        return {}
    try:
        return dict(json.loads(p.read_text(encoding="utf-8")).get("files", {}))
    except (ValueError, AttributeError) as exc:
        raise SessionError(f"{p} is damaged: {exc}", hint="delete it; rerunning the stages rebuilds it") from exc


def record_output(session: "Session", path: str | Path, record: ProvenanceRecord, sha256: str | None = None) -> str:
    """Add (or replace) the manifest entry of an output file that exists now: its sha256, size and record.
    ``sha256`` may be passed when the caller has just hashed the bytes it wrote. Safe with concurrent writers
    (file lock). Returns the session-relative key."""
    path = Path(path)
    if not path.is_file():
        raise SessionError(f"cannot record {path} in the manifest: no such file", hint="write the file first")
    key = session_relative(session.root, path)
    entry = {"sha256": sha256 or sha256_file(path), **_file_state(path), "provenance": record.to_dict()}
    with _manifest_lock(session):
        files = read_manifest(session)
        files[key] = entry
        atomic_write_json(manifest_path(session), {"schema": RECORD_SCHEMA, "session": session.meta.name,
                                                   "files": files})
    return key


def record_stage_outputs(session: "Session", stage_dir: Path, record: ProvenanceRecord,
                         known: Mapping[str, tuple[str, int]] | None = None) -> int:
    """Give every file of a completed stage folder a manifest entry, in one manifest update: files the stage
    already recorded since they were written (same size, modification time and inode) keep their entry; PNGs
    without an embedded record get ``record`` embedded; entries of files that no longer exist in the folder are
    dropped. ``known``: ``{str(path): (sha256, bytes)}``
    of files their writer made with ``record`` embedded and hashed from the bytes it wrote (e.g.
    :attr:`reconstruct.composite.outputs.PlateWriter.digests`): used as they are when the size still matches,
    without reading the file (before any older entry of the same path). Returns the number of entries added."""
    stage_dir = Path(stage_dir)
    prefix = session_relative(session.root, stage_dir).rstrip("/") + "/"
    files = [p for p in sorted(stage_dir.rglob("*")) if p.is_file() and not p.name.startswith(".")
             and p.name != "_stage.json"]
    with _manifest_lock(session):
        entries = read_manifest(session)
        present = set()
        new: list[tuple[str, Path]] = []
        added = 0
        for p in files:
            key = session_relative(session.root, p)
            present.add(key)
            state = _file_state(p)
            done = (known or {}).get(str(p))
            if done is not None and done[1] == state["bytes"]:  # hashed by its writer just now: the newest word
                entries[key] = {"sha256": done[0], **state, "provenance": record.to_dict()}
                added += 1
                continue
            if _unchanged(entries.get(key), state):  # recorded by the stage itself since it was written
                continue
            if p.suffix.lower() == ".png":
                try:
                    add_png_provenance(p, record)
                except SessionError as exc:  # not a readable PNG: record it as it is
                    log.warning("cannot embed provenance in %s: %s", p, exc.message)
            new.append((key, p))
        for (key, p), digest in zip(new, sha256_files(p for _, p in new)):
            entries[key] = {"sha256": digest, **_file_state(p), "provenance": record.to_dict()}
        added += len(new)
        for key in [k for k in entries if k.startswith(prefix) and k not in present]:
            del entries[key]
        atomic_write_json(manifest_path(session), {"schema": RECORD_SCHEMA, "session": session.meta.name,
                                                   "files": entries})
    return added


_HANDED = "provenance:handed-over-digests"


def hand_over_digests(ctx: "StageContext", stage: str, out: Path,
                      digests: Mapping[str, tuple[str, int]]) -> None:
    """Keep ``digests`` (``{str(path): (sha256, bytes)}`` of files a stage's workers wrote into its temporary
    folder ``out`` and hashed from the bytes they wrote, e.g. :func:`reconstruct.executors.frames.save_npz`'s) for
    the provenance hook that records the stage's folder once the engine has renamed it onto ``out/<stage>``: keyed by
    their final paths, they are its ``known`` (:func:`record_stage_outputs`), so the files are not read again."""
    final = ctx.session.stage_dir(stage)
    ctx.memo[(_HANDED, stage)] = {str(final / Path(p).relative_to(out)): d for p, d in digests.items()}


def handed_over_digests(ctx: "StageContext", stage: str) -> dict[str, tuple[str, int]]:
    """The digests :func:`hand_over_digests` kept for ``stage`` in this run (taken: a second call gets none)."""
    return ctx.memo.pop((_HANDED, stage), {})


def verify_manifest(session: "Session") -> dict[str, str]:
    """Check every manifest entry against the files: {key: "ok" | "missing" | "changed"}."""
    out, check = {}, []
    for key, entry in read_manifest(session).items():
        p = Path(key) if Path(key).is_absolute() else session.root / key
        if not p.is_file():
            out[key] = "missing"
        else:
            out[key] = ""
            check.append((key, p, entry.get("sha256")))
    for (key, _, want), got in zip(check, sha256_files(p for _, p, _ in check)):
        out[key] = "ok" if got == want else "changed"
    return out


def write_png(session: "Session", path: str | Path, image: np.ndarray, record: ProvenanceRecord) -> Path:
    """:func:`png_with_provenance` + :func:`record_output` (hashing the encoded bytes, not re-reading the file)."""
    data = encode_png(image, record, str(path))
    atomic_write_bytes(Path(path), data)
    record_output(session, path, record, sha256=hashlib.sha256(data).hexdigest())
    return Path(path)


def write_exr(session: "Session", path: str | Path, image: np.ndarray, record: ProvenanceRecord,
              half: bool = False) -> Path:
    """:func:`exr_with_provenance` + :func:`record_output`."""
    exr_with_provenance(path, image, record, half=half)
    record_output(session, path, record)
    return Path(path)
