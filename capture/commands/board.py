"""``capture board RIG OUTPUT``: render the rig's calibration board at physical size (PDF or PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP_EPILOG = """\
examples:
  capture board rigs/hero-2ir.toml board.pdf              PDF page at true size: print at 100 % / "actual size"
  capture board rigs/hero-2ir.toml board.png --dpi 300    PNG at 300 dpi (dpi stored in the file)
  capture board rigs/hero-2ir.toml board.pdf --margin 15  15 mm white margin around the squares

The board (ChArUco or chessboard, squares, square and marker size, dictionary, inverted print) comes from the
rig file's [board] table. After printing, measure one square with a ruler: it must be square_size exactly
(a printer that scales the page makes every calibration wrong by the same factor). Glue it onto something flat.
"""

MM_PER_INCH = 25.4


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("board", help="render the rig's calibration board at physical size", epilog=HELP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rig", type=Path, help="rig file (rigs/*.toml) whose [board] to render")
    p.add_argument("output", type=Path, help="board.pdf (true size page) or board.png")
    p.add_argument("--dpi", type=float, default=300.0, help="resolution in dots per inch (default 300)")
    p.add_argument("--margin", type=float, default=10.0, metavar="MM", help="margin around the board, mm (default 10)")
    return p


def render_board_page(board, dpi: float, margin_mm: float):
    """The printable board: (grey uint8 image, exact dots per inch so that one square is ``square_size``)."""
    from reconstruct.calibration.boards import board_image
    from reconstruct.errors import ConfigError

    if dpi <= 0 or margin_mm < 0:
        raise ConfigError("--dpi must be positive and --margin not negative")
    square_in = board.square_size * 1000 / MM_PER_INCH
    pps = max(int(round(square_in * dpi)), 4)
    exact_dpi = pps / square_in  # integer pixels per square; the page's dpi absorbs the rounding
    margin_squares = (margin_mm / MM_PER_INCH * exact_dpi) / pps
    return board_image(board, pps, margin_squares=margin_squares), exact_dpi


def run(args: argparse.Namespace, host) -> int:
    from PIL import Image

    from reconstruct.errors import ConfigError
    from reconstruct.rig import load_rig
    from reconstruct.session import atomic_path
    from reconstruct.calibration.boards import describe

    rig = load_rig(args.rig)
    suffix = args.output.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise ConfigError(f"{args.output}: output must end in .pdf or .png")
    img, dpi = render_board_page(rig.board, args.dpi, args.margin)
    pil = Image.fromarray(img, mode="L")
    with atomic_path(args.output) as tmp:
        if suffix == ".pdf":
            pil.save(tmp, format="PDF", resolution=dpi)
        else:
            pil.save(tmp, format="PNG", dpi=(dpi, dpi))
    h, w = img.shape
    print(f"wrote {args.output}: {describe(rig.board)}; {w / dpi * MM_PER_INCH:.1f} x {h / dpi * MM_PER_INCH:.1f} mm "
          f"at {dpi:.2f} dpi; print at 100 % and check one square measures {rig.board.square_size * 1000:g} mm")
    return 0
