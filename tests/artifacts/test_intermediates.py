"""The per-frame intermediates (the age stage's edits, the render stage's faces): crops of the plate placed by their
origin, stored uncompressed as 16-bit fixed point, and files of the older layout still readable."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from reconstruct.artifacts import RenderedFace, load_edit, save_edit
from reconstruct.artifacts.codec import decode_unit, encode_unit
from reconstruct.errors import MethodError
from reconstruct.methods import FaceEdit


def _edit(h=60, w=80, origin=(0, 0)):
    rng = np.random.default_rng(0)
    img = rng.random((h, w, 3)).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    mask[10:30, 20:50] = 1.0
    mask[12, 22] = 0.3
    keep = np.zeros((h, w), bool)
    keep[15, 25] = True
    return FaceEdit(frame=3, kind="image", image=img, mask=mask, keep=keep, blend="exact", origin=origin,
                    landmark_shift=np.ones((4, 2), np.float32), info={"a": 1})


def test_cropped_edit_is_the_mask_box_and_goes_back_onto_the_plate():
    plate = np.random.default_rng(1).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    full = _edit(100, 120).on_plate(plate)
    crop = full.cropped()
    assert crop.origin == (20, 10) and crop.mask.shape == (20, 30)  # the bounding box of mask > 0
    back = crop.on_plate(plate)
    assert back.origin == (0, 0)
    np.testing.assert_array_equal(back.mask, full.mask)
    np.testing.assert_array_equal(back.keep, full.keep)
    inside = full.mask > 0
    np.testing.assert_array_equal(back.image[inside], full.image[inside])
    np.testing.assert_array_equal(back.image[~inside], plate[~inside].astype(np.float32) / np.float32(255))
    grown = full.cropped(margin=5)
    assert grown.origin == (15, 5) and grown.mask.shape == (30, 40)
    empty = FaceEdit(frame=0, kind="image", image=np.zeros((5, 5, 3), np.float32), mask=np.zeros((5, 5), np.float32))
    assert empty.cropped().mask.shape == (0, 0)


def test_crop_outside_the_plate_and_bad_origin_are_clear_errors():
    e = _edit(60, 80, origin=(50, 0))
    with pytest.raises(MethodError, match="lies outside"):
        e.check_fits((50, 100, 3))
    with pytest.raises(MethodError, match="origin"):
        _edit(origin=(-1, 0))
    with pytest.raises(MethodError, match="keep"):
        FaceEdit(frame=0, kind="image", image=np.zeros((4, 4, 3), np.float32), mask=np.zeros((4, 4), np.float32),
                 keep=np.zeros((3, 4), bool))


def test_edit_round_trip_keeps_the_origin_and_is_stored_not_compressed(tmp_path):
    e = _edit(origin=(300, 40))
    p = tmp_path / "e.npz"
    save_edit(e, p)
    with zipfile.ZipFile(p) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    with np.load(p) as d:
        assert d["image"].dtype == np.uint16 and d["mask"].dtype == np.uint16
    back = load_edit(p)
    assert back.origin == (300, 40) and back.blend == "exact" and back.info == {"a": 1}
    # 16-bit fixed point: half a code of 65535 at most (the 16-bit PNG plate rounds the same way)
    assert np.abs(back.image - e.image).max() <= 0.5 / 65535 + 1e-7
    assert np.abs(back.mask - e.mask).max() <= 0.5 / 65535 + 1e-7
    np.testing.assert_array_equal(back.keep, e.keep)
    assert encode_unit(back.image).tobytes() == encode_unit(e.image).tobytes()  # re-saving changes nothing


def test_files_of_the_old_layout_still_load(tmp_path):
    """Before: float32 arrays, zlib-compressed, plate-sized, no origin."""
    e = _edit()
    p = tmp_path / "old.npz"
    np.savez_compressed(p, frame=np.asarray(3), kind=np.asarray("image"), info=np.asarray("{}"), image=e.image,
                        mask=e.mask)
    back = load_edit(p)
    assert back.origin == (0, 0)
    np.testing.assert_array_equal(back.image, e.image)
    q = tmp_path / "old_render.npz"
    np.savez_compressed(q, image=e.image, coverage=e.mask)
    r = RenderedFace.load(q)
    assert r.origin == (0, 0) and not r.exact
    np.testing.assert_array_equal(r.coverage, e.mask)


def test_rendered_face_round_trip(tmp_path):
    e = _edit()
    r = RenderedFace(e.image, e.mask, exclude=e.keep, skin=e.mask > 0, exact=True, origin=(7, 9))
    p = tmp_path / "r.npz"
    r.save(p)
    with zipfile.ZipFile(p) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    back = RenderedFace.load(p)
    assert back.origin == (7, 9) and back.exact
    assert np.abs(back.image - e.image).max() <= 0.5 / 65535 + 1e-7
    np.testing.assert_array_equal(back.exclude, e.keep)
    assert decode_unit(np.asarray([65535], np.uint16))[0] == 1.0
