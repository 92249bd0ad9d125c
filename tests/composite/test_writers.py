"""The composite's deliverables are written with faster lossless encoders (issue 16): the EXR is PIZ-compressed
and decodes to exactly the half floats it was given, the PNG to exactly the 16-bit values, provenance included."""

from __future__ import annotations

import numpy as np


def _record():
    from reconstruct.provenance import ProvenanceRecord

    return ProvenanceRecord(method="digital_human", stage="composite", plugins=(("deage", "test"),),
                            settings={"k": 1}, inputs=(), tool_version="test", created="now", session="s")


def test_plate_files_decode_bit_identical_and_exr_is_piz(tmp_path):
    import OpenEXR

    from reconstruct.composite import CompositeCrop
    from reconstruct.composite.outputs import PlateWriter, frame_arrays
    from reconstruct.provenance import read_exr, read_exr_provenance, read_png_provenance

    rng = np.random.default_rng(0)
    plate = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    image = rng.random((40, 50, 3), dtype=np.float32)
    alpha = np.ones((40, 50), np.float32)
    crop = CompositeCrop(plate, (30, 20), image, alpha, image)
    writer = PlateWriter(tmp_path / "hero", tmp_path / "stage", record=_record())
    writer.write_plate(7, crop)
    png, lin = frame_arrays(crop)
    import cv2

    back = cv2.cvtColor(cv2.imread(str(tmp_path / "hero" / "000007.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert back.dtype == np.uint16 and np.array_equal(back, png)
    exr = tmp_path / "hero" / "000007.exr"
    got = read_exr(exr)
    assert np.array_equal(np.asarray(got, np.float16).view(np.uint16), lin.astype(np.float16).view(np.uint16))
    with OpenEXR.File(str(exr)) as f:
        assert f.header()["compression"] == OpenEXR.PIZ_COMPRESSION
    assert read_exr_provenance(exr).settings == {"k": 1}
    assert read_png_provenance(tmp_path / "hero" / "000007.png").settings == {"k": 1}
