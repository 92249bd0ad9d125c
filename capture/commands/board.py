"""``capture board RIG OUTPUT``: render the rig's calibration board at physical size on a real paper page (PDF or
PNG)."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

HELP_EPILOG = """\
examples:
  capture board rigs/hero-2ir.toml board.pdf              A4 page (the smallest standard paper the board fits)
  capture board rigs/hero-2ir.toml board.pdf --paper a3   on A3 paper
  capture board rigs/hero-2ir.toml board.png --dpi 300    PNG page at 300 dpi (dpi stored in the file)
  capture board rigs/hero-2ir.toml board.pdf --paper 300x400mm --margin 15

The board (ChArUco or chessboard, squares, square and marker size, dictionary, inverted print) comes from the
rig file's [board] table; its size is fixed by square_size, so the page is chosen to fit it: by default the first
standard paper it fits on, A4, Letter, Legal, A3, Tabloid, A2, A1, A0 (portrait, or landscape when only that
fits), with at least --margin mm of white between the squares and the paper's edge. A board that does not fit the
paper asked for is an error naming the paper it needs. Print on that paper at 100 % / "actual size" (never "fit
to page"), then measure one square with a ruler: it must be square_size exactly (a printer that scales the page
makes every calibration wrong by the same factor). Glue it onto something flat.
"""

MM_PER_INCH = 25.4


@dataclass(frozen=True, slots=True)
class Paper:
    """A sheet of paper: ``name`` and portrait size in millimetres (``width`` <= ``height``)."""

    name: str
    width: float
    height: float

    def __str__(self) -> str:
        return f"{self.name} ({self.width:g} x {self.height:g} mm)"


#: standard papers, in the order the default tries them (ISO and US sizes of about the same area side by side)
PAPERS: tuple[Paper, ...] = (
    Paper("A4", 210.0, 297.0), Paper("Letter", 215.9, 279.4), Paper("Legal", 215.9, 355.6),
    Paper("A3", 297.0, 420.0), Paper("Tabloid", 279.4, 431.8), Paper("A2", 420.0, 594.0),
    Paper("A1", 594.0, 841.0), Paper("A0", 841.0, 1189.0),
)
_CUSTOM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)\s*mm\s*$", re.IGNORECASE)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("board", help="render the rig's calibration board at physical size", epilog=HELP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rig", type=Path, help="rig file (rigs/*.toml) whose [board] to render")
    p.add_argument("output", type=Path, help="board.pdf (true size page) or board.png")
    p.add_argument("--paper", default=None, metavar="PAPER",
                   help="a4, letter, legal, a3, tabloid, a2, a1, a0 or WxHmm (e.g. 300x400mm); default: the first "
                        "standard paper the board fits")
    p.add_argument("--dpi", type=float, default=300.0, help="resolution in dots per inch (default 300)")
    p.add_argument("--margin", type=float, default=5.0, metavar="MM",
                   help="least white border between the squares and the paper's edge, mm (default 5: most printers "
                        "cannot print closer to the edge)")
    return p


def parse_paper(text: str) -> Paper:
    """``a4`` (any case), ``letter`` ... or ``WxHmm``."""
    from reconstruct.errors import ConfigError

    for p in PAPERS:
        if text.strip().lower() == p.name.lower():
            return p
    m = _CUSTOM.match(text)
    if m and float(m.group(1)) > 0 and float(m.group(2)) > 0:
        w, h = sorted((float(m.group(1)), float(m.group(2))))
        return Paper(f"{m.group(1)}x{m.group(2)}mm", w, h)
    raise ConfigError(f"--paper {text!r} is not a paper",
                      hint="use " + ", ".join(p.name.lower() for p in PAPERS) + " or WxHmm, e.g. 300x400mm")


def board_size_mm(board) -> tuple[float, float]:
    """(width, height) of the squares, millimetres."""
    return board.squares[0] * board.square_size * 1000, board.squares[1] * board.square_size * 1000


def fit(board, paper: Paper, margin_mm: float) -> tuple[float, float] | None:
    """The page (width, height) mm, portrait when the board fits that way, else landscape; None if it does not fit."""
    bw, bh = board_size_mm(board)
    for w, h in ((paper.width, paper.height), (paper.height, paper.width)):
        if bw + 2 * margin_mm <= w + 1e-9 and bh + 2 * margin_mm <= h + 1e-9:
            return w, h
    return None


def choose_paper(board, paper: str | None, margin_mm: float) -> tuple[Paper, tuple[float, float]]:
    """The paper to print on and the page size (mm, oriented). Errors say which paper the board needs."""
    from reconstruct.calibration.boards import describe
    from reconstruct.errors import ConfigError

    bw, bh = board_size_mm(board)
    need = f"the board ({describe(board)}: {bw:g} x {bh:g} mm) with a {margin_mm:g} mm margin"
    fitting = [p for p in PAPERS if fit(board, p, margin_mm)]
    if paper is not None:
        chosen = parse_paper(paper)
        page = fit(board, chosen, margin_mm)
        if page is None:
            alt = f"--paper {fitting[0].name.lower()}" if fitting else f"--paper {_min_page(bw, bh, margin_mm)}"
            raise ConfigError(f"{need} does not fit {chosen} paper",
                              hint=f"use {alt}, or a smaller --margin (the squares must stay "
                                   f"{board.square_size * 1000:g} mm: they are the rig's calibration target)")
        return chosen, page
    if not fitting:
        raise ConfigError(f"{need} does not fit any standard paper up to A0",
                          hint=f"print it in tiles, or pass --paper {_min_page(bw, bh, margin_mm)} for a plotter")
    return fitting[0], fit(board, fitting[0], margin_mm)


def _min_page(bw: float, bh: float, margin_mm: float) -> str:
    return f"{math.ceil(bw + 2 * margin_mm)}x{math.ceil(bh + 2 * margin_mm)}mm"


def render_board_page(board, dpi: float, margin_mm: float, page_mm: tuple[float, float] | None = None):
    """The printable page: (grey uint8 image, exact dots per inch so that one square is ``square_size``).

    The board with ``margin_mm`` of quiet zone is centred on a white page of ``page_mm`` (width, height)
    millimetres (default: just the board and its margin)."""
    import numpy as np

    from reconstruct.calibration.boards import board_image
    from reconstruct.errors import ConfigError

    if not (math.isfinite(dpi) and dpi > 0) or not (math.isfinite(margin_mm) and margin_mm >= 0):
        raise ConfigError("--dpi must be positive and --margin not negative")
    square_in = board.square_size * 1000 / MM_PER_INCH
    pps = max(int(round(square_in * dpi)), 4)
    exact_dpi = pps / square_in  # integer pixels per square; the page's dpi absorbs the rounding
    margin_px = margin_mm / MM_PER_INCH * exact_dpi
    if page_mm is None:
        return board_image(board, pps, margin_squares=margin_px / pps), exact_dpi
    # on a page: whole pixels of margin, rounded down, so that the board and its margin never outgrow the paper
    img = board_image(board, pps, margin_squares=math.floor(margin_px + 1e-6) / pps)
    # never a pixel larger than the paper (a print dialog that "shrinks oversized pages" would scale the squares)
    pw, ph = (int(math.floor(v / MM_PER_INCH * exact_dpi + 1e-6)) for v in page_mm)
    h, w = img.shape
    page = np.full((max(ph, h), max(pw, w)), 255, np.uint8)
    y, x = (page.shape[0] - h) // 2, (page.shape[1] - w) // 2
    page[y:y + h, x:x + w] = img
    return page, exact_dpi


def run(args: argparse.Namespace, host) -> int:
    from PIL import Image

    from reconstruct.calibration.boards import describe
    from reconstruct.errors import ConfigError
    from reconstruct.rig import load_rig
    from reconstruct.session import atomic_path

    rig = load_rig(args.rig)
    suffix = args.output.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise ConfigError(f"{args.output}: output must end in .pdf or .png")
    if not (math.isfinite(args.margin) and args.margin >= 0):
        raise ConfigError("--margin must be a number of millimetres, 0 or more")
    paper, page_mm = choose_paper(rig.board, args.paper, args.margin)
    img, dpi = render_board_page(rig.board, args.dpi, args.margin, page_mm)
    pil = Image.fromarray(img, mode="L")
    with atomic_path(args.output) as tmp:
        if suffix == ".pdf":
            pil.save(tmp, format="PDF", resolution=dpi)
        else:
            pil.save(tmp, format="PNG", dpi=(dpi, dpi))
    h, w = img.shape
    bw, bh = board_size_mm(rig.board)
    also = [p.name for p in PAPERS if p != paper and fit(rig.board, p, args.margin)][:2]
    orient = "landscape" if page_mm[0] > page_mm[1] else "portrait"
    print(f"wrote {args.output}: {describe(rig.board)} ({bw:g} x {bh:g} mm) centred on the page ({paper.name} "
          f"{orient}, {w / dpi * MM_PER_INCH:.1f} x {h / dpi * MM_PER_INCH:.1f} mm at {dpi:.2f} dpi)")
    print(f"print on {paper} paper at 100 % / actual size (not 'fit to page') and check one square measures "
          f"{rig.board.square_size * 1000:g} mm" + (f"; it also fits {' and '.join(also)}" if also else ""))
    return 0
