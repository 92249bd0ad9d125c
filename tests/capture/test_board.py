"""`capture board`: the board at true size on a real paper page, or an error saying which paper it needs."""

from __future__ import annotations

import re

import cv2
import pytest

from capture.cli import main as capture_main
from reconstruct.calibration.detect import detect_board
from reconstruct.rig import load_rig

PT_PER_MM = 72 / 25.4
A4_PT = (210 * PT_PER_MM, 297 * PT_PER_MM)  # 595.3 x 841.9
LETTER_PT = (215.9 * PT_PER_MM, 279.4 * PT_PER_MM)  # 612 x 792


def _rig(tmp_path, squares=(5, 7), square=0.04, marker=0.02):
    p = tmp_path / "rig.toml"
    p.write_text(f"""[rig]
name = "r"
fps = 30
[board]
squares = [{squares[0]}, {squares[1]}]
square_size = {square}
marker_size = {marker}
[[camera]]
name = "hero"
role = "hero"
resolution = [64, 48]
""")
    return p


def _page_pt(pdf):
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
    return float(box.group(1)), float(box.group(2))


def _close(got, want, tol_pt=0.5):  # 0.5 pt = 0.18 mm; the page is at most one pixel (0.085 mm at 300 dpi) short
    return abs(got[0] - want[0]) < tol_pt and abs(got[1] - want[1]) < tol_pt


def test_shipped_rig_board_prints_on_a4_not_a_220x300_page(repo_root, tmp_path, capsys):
    """hero-2ir: 5x7 squares of 40 mm = 200 x 280 mm. Before: a 220 x 300 mm page (10 mm margins) that fits
    neither A4 nor Letter, with "print at 100 %"."""
    pdf = tmp_path / "board.pdf"
    assert capture_main(["board", str(repo_root / "rigs" / "hero-2ir.toml"), str(pdf)]) == 0
    assert _close(_page_pt(pdf), A4_PT), _page_pt(pdf)
    out = capsys.readouterr().out
    assert "centred on the page (A4 portrait, " in out and "print on A4 (210 x 297 mm) paper at 100 %" in out
    # 280 mm of squares cannot fit Letter's 279.4 mm: asking for it says which paper the board needs
    assert capture_main(["board", str(repo_root / "rigs" / "hero-2ir.toml"), str(pdf), "--paper", "letter"]) == 2
    err = "".join(capsys.readouterr().err.split())
    assert "".join("does not fit Letter (215.9 x 279.4 mm) paper".split()) in err
    assert "--papera4" in err


def test_a_board_that_fits_both_gets_a4_by_default_or_letter_on_request(tmp_path, capsys):
    rig = _rig(tmp_path, square=0.03, marker=0.015)  # 150 x 210 mm
    pdf = tmp_path / "b.pdf"
    assert capture_main(["board", str(rig), str(pdf)]) == 0
    assert _close(_page_pt(pdf), A4_PT)
    assert "it also fits Letter" in capsys.readouterr().out
    assert capture_main(["board", str(rig), str(pdf), "--paper", "Letter"]) == 0
    assert _close(_page_pt(pdf), LETTER_PT)
    assert capture_main(["board", str(rig), str(pdf), "--paper", "300x400mm"]) == 0
    assert _close(_page_pt(pdf), (300 * PT_PER_MM, 400 * PT_PER_MM))


def test_landscape_when_only_that_fits_and_the_png_page_still_detects(tmp_path, capsys):
    rig = _rig(tmp_path, squares=(7, 5))  # 280 x 200 mm: A4 landscape
    pdf = tmp_path / "b.pdf"
    assert capture_main(["board", str(rig), str(pdf)]) == 0
    assert _close(_page_pt(pdf), A4_PT[::-1])
    png = tmp_path / "b.png"
    assert capture_main(["board", str(rig), str(png), "--dpi", "100"]) == 0
    from PIL import Image

    im = Image.open(png)
    dpi = im.info["dpi"][0]
    w_mm, h_mm = im.size[0] / dpi * 25.4, im.size[1] / dpi * 25.4
    assert 296.7 < w_mm <= 297.0 and 209.7 < h_mm <= 210.0, (w_mm, h_mm)  # never larger than the paper
    det = detect_board(cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), load_rig(rig).board)
    assert det is not None and det.n == 6 * 4  # every inner corner of the 7x5 board


@pytest.mark.parametrize("args, message", [
    (["--paper", "b5"], "--paper 'b5' is not a paper"),
    (["--paper", "0x300mm"], "is not a paper"),
    (["--margin", "nan"], "--margin must be"),
])
def test_bad_paper_or_margin_exit_2(tmp_path, capsys, args, message):
    assert capture_main(["board", str(_rig(tmp_path)), str(tmp_path / "b.pdf"), *args]) == 2
    assert "".join(message.split()) in "".join(capsys.readouterr().err.split())
    assert not (tmp_path / "b.pdf").exists()


def test_a_board_larger_than_a0_says_so(tmp_path, capsys):
    rig = _rig(tmp_path, squares=(20, 30), square=0.05, marker=0.03)  # 1000 x 1500 mm
    assert capture_main(["board", str(rig), str(tmp_path / "b.pdf")]) == 2
    err = "".join(capsys.readouterr().err.split())
    assert "doesnotfitanystandardpaperuptoA0" in err and "--paper1010x1510mm" in err
