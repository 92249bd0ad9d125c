"""The session directory: the only code that reads and writes it.

Layout (schema 1)::

    session/
      session.toml            [session] schema, name, rig, fps, created, timecode_start, notes; [[consent]] records
      rig.toml                copy of the rig definition the session was recorded with
      cams/<camera>/          frames (PNG, or raw .npy from `capture record`) + frames.csv (see reconstruct.session.frames)
      capture.json            recorder status and per-camera counts (written by `capture record`)
      sync_report.json        sync report (written by `capture sync`)
      calib/<camera>/         calibration captures (board images) + frames.csv, same format
      sync.csv                matched frame sets (written by the sync stage)
      calibration.json        calibrated cameras (written by the calibrate stage)
      out/<stage>/            each stage's results + _stage.json (cache key); see reconstruct.engine
      out/methods/<method>/   a method's trained assets (checkpoints), kept across reruns of the age stage
      out/plates/hero/        the composited hero plate (16-bit PNG + half EXR, provenance in each file)
      out/manifest.json       provenance record + sha256 of every output file (reconstruct.provenance)

Images are RGB ``uint8 (H, W, 3)`` or grayscale ``uint8 (H, W)`` in memory; the BGR order of OpenCV stays inside
this module.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

import numpy as np

from ..errors import NotASessionError, SessionError
from ..rig import Rig, load_rig, rig_to_toml
from .atomic import TRASH_DIR, atomic_path, atomic_write_json, atomic_write_text
from .frames import FrameLog, FrameRecord, format_rows, parse_rows

if TYPE_CHECKING:  # pragma: no cover
    from ..calibration.result import RigCalibration
    from ..camera import CameraModel

SCHEMA_VERSION = 1
SESSION_FILE = "session.toml"
STAGE_FILE = "_stage.json"  # in out/<stage>/: written last, when the stage completed (name, version, cache key)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """Consent of a performer for an identity-changing method (``[[consent]]`` in session.toml).

    Attributes:
        performer: the person whose face is changed.
        reference: what reference material the consent covers (e.g. "young stills 1985-1992").
        granted_by: who signed (performer or representative).
        date: ISO date of the signature.
        scope: the methods covered (e.g. ["deepfake", "fran", "digital_human"]) or ["*"].
        document: where the signed document is kept.
    """

    performer: str
    reference: str
    granted_by: str
    date: str
    scope: tuple[str, ...] = ("*",)
    document: str = ""
    problems: tuple[str, ...] = ()  # why a record read from session.toml is not valid (it then covers nothing)

    def covers(self, method: str) -> bool:
        """True when this is a valid record whose scope names ``method`` (or ``*``)."""
        return not self.problems and ("*" in self.scope or method in self.scope)

    @classmethod
    def from_toml(cls, raw: object, where: str) -> "ConsentRecord":
        """A ``[[consent]]`` table as written by hand: every required field is checked (performer, granted_by,
        an ISO date and an explicit scope -- a missing scope is *not* read as every method); what is wrong is kept
        in ``problems`` so that identity-changing methods can say why they refuse (exit 11)."""
        from datetime import date as _date

        if not isinstance(raw, Mapping):
            return cls("", "", "", "", (), "", (f"{where}: consent must be a [[consent]] table, got {raw!r}",))
        problems = []
        text = {k: raw.get(k) for k in ("performer", "reference", "granted_by", "date", "document")}
        for k in ("performer", "granted_by"):
            if not isinstance(text[k], str) or not text[k].strip():
                problems.append(f"{where}: {k} is missing or blank")
        date = str(text["date"]) if text["date"] is not None else ""
        try:
            date = _date.fromisoformat(date.strip()).isoformat()
        except ValueError:
            problems.append(f"{where}: date {text['date']!r} is not a date (write YYYY-MM-DD)")
        scope = raw.get("scope")
        if isinstance(scope, str):
            scope = [scope]
        if not isinstance(scope, list) or not scope or not all(isinstance(s, str) and s.strip() for s in scope):
            problems.append(f"{where}: scope is missing (name the methods covered, or [\"*\"] for all)")
            scope = []
        return cls(performer=str(text["performer"] or "").strip(), reference=str(text["reference"] or "").strip(),
                   granted_by=str(text["granted_by"] or "").strip(), date=date,
                   scope=tuple(s.strip() for s in scope), document=str(text["document"] or ""),
                   problems=tuple(problems))


@dataclass(frozen=True, slots=True)
class SessionMeta:
    """``[session]`` of session.toml. ``timecode_start`` is SMPTE ``HH:MM:SS:FF``; ``created`` ISO 8601 UTC."""

    name: str
    rig: str
    fps: float
    created: str
    schema: int = SCHEMA_VERSION
    timecode_start: str = "00:00:00:00"
    notes: str = ""
    consent: tuple[ConsentRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class FrameSet:
    """One row of ``sync.csv``: the frames of every camera that belong to output frame ``frame``.

    Attributes:
        frame: output frame number, 0-based, one per hero frame.
        t_ns: hero capture time, nanoseconds (hero camera clock).
        indices: camera name -> frame index in that camera's frames.csv, or None when it has no match.
    """

    frame: int
    t_ns: int
    indices: Mapping[str, int | None] = field(default_factory=dict)


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


_CAPTURE_REPORT_HINT = ("capture.json is only the recorder's report: the frames and their rows in "
                        "cams/*/frames.csv are not affected; `capture sync` still reads them")


class Session:
    """A session directory. Construct with :meth:`open` or :meth:`create`."""

    def __init__(self, root: Path, meta: SessionMeta, rig: Rig) -> None:
        self.root = root
        self.meta = meta
        self.rig = rig
        self._records: dict[tuple[str, str], dict[int, FrameRecord]] = {}  # frames.csv by index, read once

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, rig: Rig, *, name: str | None = None, notes: str = "",
               timecode_start: str = "00:00:00:00", consent: Iterable[ConsentRecord] = ()) -> "Session":
        """Create a new, empty session. Refuses a folder that already holds a session or other files."""
        root = Path(root)
        if (root / SESSION_FILE).exists():
            raise SessionError(f"{root} already holds a session", hint="choose a new folder; nothing was changed")
        if root.exists() and any(root.iterdir()):
            raise SessionError(f"{root} exists and is not empty", hint="record into a new or empty folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for cam in rig.camera_names:
                (root / "cams" / cam).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(f"cannot create session folder {root}: {exc.strerror}",
                               hint="pick a writable location with free space") from exc
        meta = SessionMeta(name=name or root.name, rig=rig.name, fps=rig.fps,
                           created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           timecode_start=timecode_start, notes=notes, consent=tuple(consent))
        s = cls(root, meta, rig)
        atomic_write_text(root / "rig.toml", rig_to_toml(rig))
        s._write_meta()
        return s

    @classmethod
    def open(cls, root: str | Path) -> "Session":
        root = Path(root)
        f = root / SESSION_FILE
        if not root.is_dir():
            raise NotASessionError(f"{root} is not a folder", hint="pass a session folder made by `capture record` "
                                   "or `reconstruct synth`")
        if not f.exists():
            raise NotASessionError(f"{root} is not a session: it has no {SESSION_FILE}",
                                   hint="pass a folder made by `capture record` or `reconstruct synth`")
        try:
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SessionError(f"{f}: not valid TOML: {exc}") from exc
        s = data.get("session", {})
        schema = s.get("schema")
        if schema != SCHEMA_VERSION:
            raise SessionError(f"{f}: session schema {schema!r}, this version reads schema {SCHEMA_VERSION}",
                               hint="upgrade or downgrade the tool to match the session")
        raw_consent = data.get("consent", [])
        if not isinstance(raw_consent, list):
            raw_consent = [raw_consent]
        consent = tuple(ConsentRecord.from_toml(c, f"{f} [[consent]] #{i + 1}") for i, c in enumerate(raw_consent))
        try:
            meta = SessionMeta(name=s["name"], rig=s["rig"], fps=float(s["fps"]), created=str(s["created"]),
                               schema=schema, timecode_start=s.get("timecode_start", "00:00:00:00"),
                               notes=s.get("notes", ""), consent=consent)
        except KeyError as exc:
            raise SessionError(f"{f}: missing key {exc.args[0]!r}") from exc
        rig = load_rig(root / "rig.toml")
        return cls(root, meta, rig)

    def _write_meta(self) -> None:
        m = self.meta
        lines = ["[session]", f"schema = {m.schema}", f"name = {_toml_str(m.name)}", f"rig = {_toml_str(m.rig)}",
                 f"fps = {m.fps!r}", f"created = {_toml_str(m.created)}",
                 f"timecode_start = {_toml_str(m.timecode_start)}", f"notes = {_toml_str(m.notes)}"]
        for c in m.consent:
            lines += ["", "[[consent]]", f"performer = {_toml_str(c.performer)}",
                      f"reference = {_toml_str(c.reference)}", f"granted_by = {_toml_str(c.granted_by)}",
                      f"date = {_toml_str(c.date)}", "scope = [" + ", ".join(_toml_str(x) for x in c.scope) + "]",
                      f"document = {_toml_str(c.document)}"]
        atomic_write_text(self.root / SESSION_FILE, "\n".join(lines) + "\n")

    def add_consent(self, record: ConsentRecord) -> None:
        from dataclasses import replace

        checked = ConsentRecord.from_toml({"performer": record.performer, "reference": record.reference,
                                           "granted_by": record.granted_by, "date": record.date,
                                           "scope": list(record.scope), "document": record.document}, "the record")
        if checked.problems:
            raise SessionError("consent record not added: " + "; ".join(checked.problems))
        broken = [p for c in self.meta.consent for p in c.problems]
        if broken:  # rewriting session.toml would normalise (and so lose) what is there now
            raise SessionError("consent record not added: session.toml holds invalid consent records: "
                               + "; ".join(broken), hint=f"fix or remove them in {self.root / SESSION_FILE} first")
        self.meta = replace(self.meta, consent=self.meta.consent + (record,))
        self._write_meta()

    # -- paths -----------------------------------------------------------------------------------------------
    def camera_dir(self, camera: str, kind: str = "cams") -> Path:
        self.rig.camera(camera)  # validates the name
        return self.root / kind / camera

    def stage_dir(self, stage: str) -> Path:
        return self.root / "out" / stage

    def stage_record(self, stage: str) -> dict | None:
        """``out/<stage>/_stage.json`` (name, version, cache key, upstream keys, seconds) of a completed stage, or
        None when the stage has not completed (or its record is unreadable)."""
        f = self.stage_dir(stage) / STAGE_FILE
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and "key" in rec else None

    def stage_key(self, stage: str) -> str | None:
        """The cache key of a completed stage's output, or None."""
        rec = self.stage_record(stage)
        return None if rec is None else str(rec["key"])

    def method_dir(self, method: str, create: bool = False) -> Path:
        """``out/methods/<method>/``: a method's trained assets and caches, kept across reruns of its stages."""
        d = self.root / "out" / "methods" / method
        if create:
            d.mkdir(parents=True, exist_ok=True)
        return d

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Hold ``out/.lock`` while a run works on this session: a second ``reconstruct run`` on the same session
        stops with a clear error instead of both writing the same stage folders. The lock is released when the
        process ends, however it ends."""
        import fcntl

        out = self.root / "out"
        try:
            out.mkdir(exist_ok=True)
            fh = open(out / ".lock", "a+")
        except OSError as exc:
            raise SessionError(f"cannot write in {out}: {exc.strerror}",
                               hint="the session folder must be writable by you: check its permissions, or copy "
                                    "the session to a writable place") from exc
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                who = fh.read().strip() or "another process"
                raise SessionError(f"{self.root} is being processed by another run ({who})",
                                   hint="wait for it to finish, or stop it; runs of one session cannot overlap")
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}\n")
            fh.flush()
            yield
        finally:
            fh.close()

    def remove_leftovers(self) -> list[Path]:
        """Remove what an interrupted run left in ``out/`` and ``out/plates/`` (``.<name>.tmp`` folders, ``*.old``
        folders of an interrupted replace, old versions not yet deleted in ``.deleting``): never a complete result.
        Call it only under :meth:`run_lock`."""
        import shutil

        gone = []
        for d in (self.root / "out", self.plates_dir):
            if d.is_dir():
                gone += [p for p in sorted(d.glob(".*.tmp")) + sorted(d.glob("*.old")) + [d / TRASH_DIR]
                         if p.is_dir()]
        for p in gone:
            shutil.rmtree(p, ignore_errors=True)
        return gone

    @property
    def plates_dir(self) -> Path:
        """``out/plates/``: the composited plates, one folder per method (:meth:`method_plates`)."""
        return self.root / "out" / "plates"

    def method_plates(self, method: str) -> Path:
        """``out/plates/<method>/``: that method's composited plates, one folder per camera (``hero/``), kept
        when another method runs, so methods can be compared on the same frames."""
        return self.plates_dir / method

    def plate_methods(self) -> list[str]:
        """The methods whose plates are in ``out/plates/``, oldest first."""
        d = self.plates_dir
        if not d.is_dir():
            return []
        hero = self.rig.hero.name
        found = [p for p in d.iterdir() if p.is_dir() and (p / hero).is_dir()]
        return [p.name for p in sorted(found, key=lambda p: ((p / hero).stat().st_mtime, p.name))]

    @property
    def calibration_path(self) -> Path:
        return self.root / "calibration.json"

    @property
    def sync_path(self) -> Path:
        return self.root / "sync.csv"

    # -- frames ------------------------------------------------------------------------------------------------
    def frames(self, camera: str, kind: str = "cams") -> list[FrameRecord]:
        """Every record of ``<kind>/<camera>/frames.csv`` (empty list if the camera recorded nothing)."""
        p = self.camera_dir(camera, kind) / "frames.csv"
        if not p.exists():
            return []
        return parse_rows(p.read_text(encoding="utf-8"), str(p))

    def frame_record(self, camera: str, index: int | None, kind: str = "cams") -> FrameRecord | None:
        """The record of frame ``index`` of a camera (None when it has none); frames.csv is read once."""
        if index is None:
            return None
        key = (kind, camera)
        if key not in self._records:
            self._records[key] = {r.index: r for r in self.frames(camera, kind)}
        return self._records[key].get(index)

    def frames_digest(self, cameras: Iterable[str] | None = None, kind: str = "cams") -> str:
        """A hash of what the frames of ``kind`` (``cams`` or ``calib``) hold: each camera's frames.csv and, for every
        image it lists, the file's name, size and modification time. Part of the cache key of every stage that
        reads the images: an image replaced on disk (a re-export, a fixed frame) makes them rerun."""
        import hashlib

        h = hashlib.sha256()
        for cam in (self.rig.camera_names if cameras is None else cameras):
            folder = self.camera_dir(cam, kind)
            log = folder / "frames.csv"
            h.update(f"{cam}\0".encode())
            if not log.exists():
                h.update(b"<no frames.csv>")
                continue
            h.update(log.read_bytes())
            for rec in self.frames(cam, kind):
                if not rec.file:
                    continue
                try:
                    st = (folder / rec.file).stat()
                    h.update(f"{rec.file}:{st.st_size}:{st.st_mtime_ns}\0".encode())
                except OSError:
                    h.update(f"{rec.file}:<missing>\0".encode())
        return h.hexdigest()

    def frame_images(self, frameset: "FrameSet", cameras: Iterable[str] | None = None,
                     ok_only: bool = True) -> dict[str, np.ndarray | None]:
        """Camera -> the image it recorded for ``frameset`` (RGB (H, W, 3) or gray (H, W)), or None where the
        camera has no frame in the set (or, with ``ok_only``, a frame not stored as ``ok``). ``cameras``: which
        (default: every camera of the rig, in rig order)."""
        out: dict[str, np.ndarray | None] = {}
        for cam in (self.rig.camera_names if cameras is None else cameras):
            rec = self.frame_record(cam, frameset.indices.get(cam))
            out[cam] = None if rec is None or (ok_only and rec.status != "ok") else self.read_image(cam, rec)
        return out

    def write_frames(self, camera: str, records: Iterable[FrameRecord], kind: str = "cams") -> None:
        atomic_write_text(self.camera_dir(camera, kind) / "frames.csv", format_rows(records))

    def frame_log(self, camera: str, kind: str = "cams") -> FrameLog:
        d = self.camera_dir(camera, kind)
        d.mkdir(parents=True, exist_ok=True)
        return FrameLog(d / "frames.csv")

    def write_image(self, camera: str, filename: str, image: np.ndarray, kind: str = "cams") -> Path:
        """Store an RGB (H, W, 3) or gray (H, W) uint8/uint16 image atomically; returns its path."""
        import cv2

        path = self.camera_dir(camera, kind) / filename
        if path.suffix == ".npy":  # raw lossless frames (what `capture record` stores by default: no encode cost)
            try:
                with atomic_path(path) as tmp:
                    np.save(tmp, np.ascontiguousarray(image), allow_pickle=False)
            except OSError as exc:
                raise SessionError(f"could not write image {path}: {exc.strerror}",
                                   hint="check free disk space and permissions") from exc
            return path
        img = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), img):
                raise SessionError(f"could not write image {path}", hint="check free disk space and the file extension")
        return path

    def read_image(self, camera: str, record: FrameRecord | str, kind: str = "cams") -> np.ndarray:
        """Read a stored frame as RGB (H, W, 3) or gray (H, W) (an RGBA frame's alpha is dropped). Plain PNGs are
        decoded by :func:`reconstruct.png.decode_png` (the same samples as OpenCV's decoder), others by OpenCV."""
        import cv2

        name = record if isinstance(record, str) else record.file
        path = self.camera_dir(camera, kind) / name
        if path.suffix == ".npy":
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise SessionError(f"cannot read frame image {path}: {exc}",
                                   hint="the file is missing or damaged") from exc
        if path.suffix.lower() == ".png":  # the plain PNGs frames are: our decoder, about half OpenCV's time
            from ..png import decode_png

            try:
                data = path.read_bytes()
            except OSError as exc:
                raise SessionError(f"cannot read frame image {path}: {exc.strerror}",
                                   hint="the file is missing or damaged") from exc
            img = decode_png(data)  # RGB order already; None: not a plain case, OpenCV decodes it below
            if img is not None:
                return np.ascontiguousarray(img[..., :3]) if img.ndim == 3 and img.shape[2] == 4 else img
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
        else:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise SessionError(f"cannot read frame image {path}", hint="the file is missing or damaged")
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return img

    # -- sync --------------------------------------------------------------------------------------------------
    def write_sync(self, framesets: Iterable[FrameSet], path: Path | None = None) -> None:
        cams = self.rig.camera_names
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["frame", "t_ns", *cams])
        for fs in framesets:
            w.writerow([fs.frame, fs.t_ns, *("" if fs.indices.get(c) is None else fs.indices[c] for c in cams)])
        atomic_write_text(path or self.sync_path, buf.getvalue())

    def read_sync(self, path: Path | None = None) -> list[FrameSet]:
        p = path or self.sync_path
        if not p.exists():
            raise SessionError(f"{p} does not exist", hint="run `reconstruct run <session> --only sync` first")
        rows = list(csv.reader(io.StringIO(p.read_text(encoding="utf-8"))))
        header, body = rows[0], rows[1:]
        cams = header[2:]
        return [FrameSet(frame=int(r[0]), t_ns=int(r[1]),
                         indices={c: (int(v) if v != "" else None) for c, v in zip(cams, r[2:])}) for r in body if r]

    # -- capture report ----------------------------------------------------------------------------------------
    @property
    def capture_report_path(self) -> Path:
        """``capture.json``: the recorder's live status and final per-camera counts (see docs/capture.md)."""
        return self.root / "capture.json"

    def write_capture_report(self, data: dict) -> None:
        atomic_write_json(self.capture_report_path, data)

    def read_capture_report(self) -> dict | None:
        """The capture report, or None for a session not made by ``capture record``. A file that is not a JSON
        object with ``state`` and ``cameras`` (truncated, overwritten) raises :class:`SessionError` naming it."""
        p = self.capture_report_path
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise SessionError(f"{p} is damaged: {exc}", hint=_CAPTURE_REPORT_HINT) from exc
        if not (isinstance(data, dict) and isinstance(data.get("state"), str) and isinstance(data.get("cameras"), dict)
                and all(isinstance(c, dict) for c in data["cameras"].values())):
            raise SessionError(f"{p} is damaged: not a capture report (a JSON object with state and cameras)",
                               hint=_CAPTURE_REPORT_HINT)
        return data

    @property
    def sync_report_path(self) -> Path:
        """``sync_report.json`` beside sync.csv, written by ``capture sync``."""
        return self.root / "sync_report.json"

    def write_sync_report(self, data: dict, path: Path | None = None) -> None:
        atomic_write_json(path or self.sync_report_path, data)

    # -- calibration -----------------------------------------------------------------------------------------
    def write_calibration(self, data: dict, path: Path | None = None) -> None:
        atomic_write_json(path or self.calibration_path, data)

    def read_calibration(self, path: Path | None = None) -> dict:
        """calibration.json as a raw dict (:meth:`calibration` is the typed, validated reading)."""
        p = path or self.calibration_path
        if not p.exists():
            raise SessionError(f"{p} does not exist", hint="run `reconstruct calibrate <session>` first")
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SessionError(f"{p} is not valid JSON: {exc}",
                               hint="rerun `reconstruct calibrate <session>` (or re-import the calibration)") from exc

    def calibration(self) -> "RigCalibration":
        """calibration.json as a validated :class:`~reconstruct.calibration.result.RigCalibration`."""
        from ..calibration.result import RigCalibration

        return RigCalibration.from_dict(self.read_calibration(), str(self.calibration_path))

    def cameras(self) -> dict[str, "CameraModel"]:
        """Camera name -> calibrated camera for every camera calibration.json has; {} when there is none yet."""
        if not self.calibration_path.exists():
            return {}
        return dict(self.calibration().cameras)

    def __repr__(self) -> str:
        return f"Session({str(self.root)!r}, rig={self.rig.name!r})"
