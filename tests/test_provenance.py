"""Provenance records in PNG/EXR files and the session manifest."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from reconstruct.demo import demo_rig_path
from reconstruct.errors import ConfigError, SessionError
from reconstruct.plugins import make_plugin_manager
from reconstruct.provenance import (PROVENANCE_KEY, ProvenanceRecord, exr_with_provenance, make_record,
                                    manifest_path, png_with_provenance, read_exr, read_exr_provenance,
                                    read_manifest, read_png_provenance, read_provenance, record_output,
                                    record_stage_outputs, session_relative, verify_manifest, write_exr,
                                    write_png)
from reconstruct.rig import load_rig
from reconstruct.session import ConsentRecord, Session


@pytest.fixture()
def session(tmp_path) -> Session:
    s = Session.create(tmp_path / "s", load_rig(demo_rig_path()), name="shot-042")
    s.add_consent(ConsentRecord("Ann Actor", "stills 1985-1990", "Ann Actor", "2026-01-02", ("fran",), "legal/ann.pdf"))
    return s


def _record(session: Session, tmp_path: Path) -> ProvenanceRecord:
    src = tmp_path / "s" / "cams" / "hero" / "plate.bin"
    src.write_bytes(b"plate bytes")
    return make_record(session, stage="composite", method="fran", host=make_plugin_manager(),
                       settings={"feather_px": 8, "weights": np.array([1.0, 2.0])}, inputs=[src])


def test_record_fields_and_json_roundtrip(session, tmp_path):
    rec = _record(session, tmp_path)
    assert rec.method == "fran" and rec.stage == "composite" and rec.session == "shot-042"
    assert dict(rec.inputs) == {"cams/hero/plate.bin": hashlib.sha256(b"plate bytes").hexdigest()}
    names = dict(rec.plugins)
    assert "sync" in names and names["sync"].startswith("deage ")  # built-ins come with distribution + version
    assert rec.settings["weights"] == [1.0, 2.0]
    assert "Ann Actor" in rec.consent[0] and "fran" in rec.consent[0]
    again = ProvenanceRecord.from_json(rec.to_json())
    assert again.to_json() == rec.to_json() and again.inputs == rec.inputs and again.plugins == rec.plugins


def test_png_roundtrip_rgb_and_gray16(session, tmp_path):
    rec = _record(session, tmp_path)
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    p = png_with_provenance(tmp_path / "a.png", rgb, rec)
    back = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, rgb)  # the inserted chunk leaves the pixels readable and unchanged
    assert read_png_provenance(p).to_json() == rec.to_json()
    g16 = np.random.default_rng(1).integers(0, 65536, (10, 12), dtype=np.uint16)
    p16 = png_with_provenance(tmp_path / "g.png", g16, rec)
    np.testing.assert_array_equal(cv2.imread(str(p16), cv2.IMREAD_UNCHANGED), g16)
    assert read_provenance(p16).method == "fran"


def test_png_chunk_is_valid_itxt_with_crc(session, tmp_path):
    rec = _record(session, tmp_path)
    data = png_with_provenance(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8), rec).read_bytes()
    pos, found = 8, False
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        if kind == b"iTXt" and body.startswith(PROVENANCE_KEY.encode() + b"\x00"):
            found = True
        pos += 12 + n
    assert found


def test_pillow_sees_the_chunk(session, tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed: cross-check with a second PNG reader skipped")
    rec = _record(session, tmp_path)
    p = png_with_provenance(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8), rec)
    with Image.open(p) as im:
        assert json.loads(im.text[PROVENANCE_KEY])["method"] == "fran"


def test_png_without_record_and_bad_dtype(session, tmp_path):
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), np.zeros((4, 4), np.uint8))
    assert read_png_provenance(plain) is None
    with pytest.raises(ConfigError, match="uint8 or uint16"):
        png_with_provenance(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32), _record(session, tmp_path))


def test_exr_roundtrip(session, tmp_path):
    rec = _record(session, tmp_path)
    img = np.random.default_rng(2).random((20, 30, 3)).astype(np.float32) * 4.0  # HDR values above 1
    p = exr_with_provenance(tmp_path / "a.exr", img, rec)
    np.testing.assert_array_equal(read_exr(p), img)
    assert read_exr_provenance(p).to_json() == rec.to_json()
    half = exr_with_provenance(tmp_path / "h.exr", img, rec, half=True)
    assert np.abs(read_exr(half) - img).max() < 4.0 * 2 ** -10  # half precision: 10-bit mantissa
    with pytest.raises(ConfigError, match="float"):
        exr_with_provenance(tmp_path / "i.exr", np.zeros((4, 4, 3), np.uint8), rec)


def test_manifest_records_hash_and_maps_stage_tmp_folder(session, tmp_path):
    rec = _record(session, tmp_path)
    tmp_stage = session.root / "out" / ".composite.tmp" / "hero"
    p = write_png(session, tmp_stage / "000001.png", np.full((8, 8, 3), 7, np.uint8), rec)
    write_exr(session, tmp_stage / "000001.exr", np.ones((8, 8, 3), np.float32), rec)
    m = read_manifest(session)
    assert set(m) == {"out/composite/hero/000001.png", "out/composite/hero/000001.exr"}
    assert m["out/composite/hero/000001.png"]["provenance"]["method"] == "fran"
    assert m["out/composite/hero/000001.png"]["bytes"] == p.stat().st_size
    # after the engine renames the temporary stage folder the manifest matches the files
    (session.root / "out" / ".composite.tmp").rename(session.root / "out" / "composite")
    assert verify_manifest(session) == {k: "ok" for k in m}
    (session.root / "out" / "composite" / "hero" / "000001.png").write_bytes(b"tampered")
    assert verify_manifest(session)["out/composite/hero/000001.png"] == "changed"
    assert session_relative(session.root, "/elsewhere/x.png") == "/elsewhere/x.png"


def _write_one(args):
    root, i = args
    s = Session.open(root)
    rec = make_record(s, stage="render", settings={"i": i})
    write_png(s, Path(root) / "out" / "render" / f"{i:03d}.png", np.full((4, 4), i, np.uint8), rec)
    return i


def test_manifest_concurrent_writers_lose_nothing(session):
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_one, [(str(session.root), i) for i in range(16)]))
    m = read_manifest(session)
    assert len(m) == 16 and {v["provenance"]["settings"]["i"] for v in m.values()} == set(range(16))


def test_record_errors(session, tmp_path):
    with pytest.raises(SessionError, match="does not exist"):
        make_record(session, inputs=[tmp_path / "nope"])
    with pytest.raises(SessionError, match="no such file"):
        record_output(session, tmp_path / "nope.png", make_record(session))
    manifest_path(session).parent.mkdir(parents=True, exist_ok=True)
    manifest_path(session).write_text("{broken")
    with pytest.raises(SessionError, match="damaged"):
        read_manifest(session)


@dataclass(frozen=True)
class _WriterSettings:
    n: int = 2


class _Writer:
    """A stage writing a plain PNG (no provenance), an npz, and one PNG through write_png."""

    name = "writer"
    requires = ()
    version = "1"
    Settings = _WriterSettings

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        n = ctx.settings[self.name].n
        for i in range(n):
            cv2.imwrite(str(out / f"plain{i}.png"), np.full((4, 4), i, np.uint8))
        np.savez(out / "data.npz", x=np.arange(3))
        from reconstruct.provenance import record_for_stage

        write_png(ctx.session, out / "rich.png", np.zeros((4, 4, 3), np.uint8),
                  record_for_stage(ctx, "writer", settings={"rich": True}))


def test_every_stage_output_gets_a_manifest_entry(session):
    import deage_plugins.provenance_manifest
    from types import MappingProxyType

    from reconstruct import hookimpl
    from reconstruct.engine import run_pipeline
    from reconstruct.stage import RunConfig

    class P:
        @hookimpl
        def register_stages(self):
            return [_Writer()]

    host = make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("provenance", deage_plugins.provenance_manifest), ("writer", P())])
    run_pipeline(RunConfig(session=session.root, options=MappingProxyType({"writer.n": "3"})), host)
    m = read_manifest(session)
    assert set(m) == {f"out/writer/plain{i}.png" for i in range(3)} | {"out/writer/data.npz", "out/writer/rich.png"}
    assert m["out/writer/rich.png"]["provenance"]["settings"]["rich"] is True  # the stage's own entry is kept
    plain = session.root / "out" / "writer" / "plain1.png"
    assert read_png_provenance(plain).stage == "writer"  # embedded afterwards
    np.testing.assert_array_equal(cv2.imread(str(plain), cv2.IMREAD_UNCHANGED), np.full((4, 4), 1, np.uint8))
    assert set(verify_manifest(session).values()) == {"ok"}
    # a rerun that writes fewer files drops the stale entries
    run_pipeline(RunConfig(session=session.root, options=MappingProxyType({"writer.n": "1"})), host)
    assert "out/writer/plain2.png" not in read_manifest(session)
    assert set(verify_manifest(session).values()) == {"ok"}


def test_sha256_files_matches_one_by_one_in_order(tmp_path):
    """The threaded hashing (manifest checks and stage records) gives each path its own digest, in order."""
    from reconstruct.provenance import sha256_file, sha256_files

    paths = []
    for i, size in enumerate([0, 1, 5000, 3 << 20, 17]):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(bytes((i * 7 + k) % 251 for k in range(min(size, 4096))) * max(1, size // 4096)
                      if size else b"")
        paths.append(p)
    assert sha256_files(paths) == [sha256_file(p) for p in paths]
    assert len(set(sha256_files(paths))) == len(paths)


def test_rewritten_file_of_the_same_size_is_hashed_again(session, tmp_path):
    """A stage rerun that rewrites a file with other bytes of the same size (an EXR or an uncompressed npz of the same
    shapes) gets a new digest: the manifest keeps an entry only for the file it was recorded for (size, modification
    time, inode). Before, the same size alone kept the old digest and `verify` then read the file as changed."""
    record = _record(session, tmp_path)
    folder = session.root / "out" / "stagex"
    folder.mkdir(parents=True)
    data = folder / "data.bin"
    data.write_bytes(b"a" * 64)
    assert record_stage_outputs(session, folder, record) == 1
    assert record_stage_outputs(session, folder, record) == 0  # nothing new: nothing hashed again
    tmp = folder / ".data.bin.tmp"
    tmp.write_bytes(b"b" * 64)  # the same size, written anew and renamed over it (the stages' atomic writes)
    tmp.replace(data)
    assert record_stage_outputs(session, folder, record) == 1
    entry = read_manifest(session)["out/stagex/data.bin"]
    assert entry["sha256"] == hashlib.sha256(b"b" * 64).hexdigest() and entry["bytes"] == 64
    assert verify_manifest(session) == {"out/stagex/data.bin": "ok"}
    # a writer's own digest of the bytes it wrote wins over an older entry of the same size
    tmp.write_bytes(b"c" * 64)
    tmp.replace(data)
    known = {str(data): (hashlib.sha256(b"c" * 64).hexdigest(), 64)}
    assert record_stage_outputs(session, folder, record, known=known) == 1
    assert verify_manifest(session) == {"out/stagex/data.bin": "ok"}


def test_sha256_file_is_the_digest_of_the_whole_file_across_read_buffers(tmp_path):
    """The file's digest in one buffer or many (sizes around the reader's 256 KiB and 1 MiB buffers)."""
    from reconstruct.hashing import sha256_file

    rng = np.random.default_rng(3)
    for size in (0, 1, (1 << 18) - 1, 1 << 18, (1 << 18) + 1, (1 << 20) + 7, (3 << 20) + 5):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        p = tmp_path / f"{size}.bin"
        p.write_bytes(data)
        assert sha256_file(p) == hashlib.sha256(data).hexdigest()
