"""Built-in plugin ``calibrate``: the calibrate stage and the calibration section of the QC report.

Stage ``calibrate`` (requires nothing: it reads ``calib/<camera>/``, not the synchronised takes) detects the rig's
board in every calibration image, calibrates the rig (:mod:`reconstruct.calibration.rig_solve`) and writes
``out/calibrate/calibration.json`` plus ``session/calibration.json`` (what :func:`load_calibration` reads).
A session without calibration images but with a ``calibration.json`` (imported with ``reconstruct calibrate
--import``) keeps that file. A take whose calibration images (content), board, rig and settings were solved before
(another take of the rig session) gets that solution from :mod:`reconstruct.calibration.cache`
(``$DEAGE_CALIBRATION_CACHE_DIR``) instead of solving again. Options (``--option calibrate.KEY=VALUE``): ``model``
(pinhole|fisheye), ``fix_aspect_ratio``, ``zero_tangent``, ``fix_k3``, ``rational``, ``refine_intrinsics``
(true|false), ``tangential`` (auto|fit|zero; default auto), ``board_shape`` (auto|estimate|rigid; default auto),
``reference`` (camera), ``step`` (use every n-th calibration image).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from reconstruct import hookimpl
from reconstruct.hashing import file_digest
from reconstruct.options import option
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)

_TANGENTIAL = {"auto": None, "fit": False, "zero": True}
_BOARD_SHAPE = {"auto": None, "estimate": True, "rigid": False}


@dataclass(frozen=True, slots=True)
class CalibrateSettings:
    """``--option calibrate.KEY=VALUE`` (the same choices as ``reconstruct calibrate``'s flags)."""

    model: Literal["pinhole", "fisheye"] = option("pinhole", "lens model of every camera")
    fix_aspect_ratio: bool = option(False, "keep fy/fx at 1")
    tangential: Literal["auto", "fit", "zero"] = option(
        "auto", "tangential distortion p1, p2: fitted per camera where significant (auto), always, or never")
    zero_tangent: bool | None = option(None, "true = tangential zero, false = tangential fit (older spelling)")
    board_shape: Literal["auto", "estimate", "rigid"] = option(
        "auto", "estimate the printed board's deviation from its spec where the data show one (auto), always, "
                "or hold it rigid")
    fix_k3: bool = option(False, "no k3 (when views do not reach the image corners)")
    rational: bool = option(False, "8-coefficient rational lens model (k4..k6)")
    refine_intrinsics: bool = option(True, "refine intrinsics in the bundle adjustment (false: only poses move)")
    reference: str | None = option(None, "camera whose frame is the world frame (default: the rig's hero)")
    step: int = option(1, "use every n-th calibration image")

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ValueError(f"calibrate.step={self.step}: must be at least 1")
        if self.zero_tangent is not None and self.tangential != "auto" and \
                _TANGENTIAL[self.tangential] != self.zero_tangent:
            raise ValueError(f"calibrate.zero_tangent={str(self.zero_tangent).lower()} contradicts "
                             f"calibrate.tangential={self.tangential}; give one of them")

    def solver_options(self, default_reference: str):
        """The :class:`~reconstruct.calibration.rig_solve.CalibrationOptions` these settings ask for."""
        from reconstruct.calibration.rig_solve import CalibrationOptions

        zero = self.zero_tangent if self.tangential == "auto" else _TANGENTIAL[self.tangential]
        return CalibrationOptions(model=self.model, fix_aspect_ratio=self.fix_aspect_ratio, zero_tangent=zero,
                                  rational=self.rational, fix_k3=self.fix_k3,
                                  refine_intrinsics=self.refine_intrinsics,
                                  reference=self.reference or default_reference,
                                  refine_board=_BOARD_SHAPE[self.board_shape])


class CalibrateStage:
    """Rig calibration from ``calib/``. Output: ``out/calibrate/calibration.json`` (schema in
    :mod:`reconstruct.calibration.result`), copied to ``session/calibration.json``."""

    name = "calibrate"
    requires: tuple[str, ...] = ()
    version = "1"
    Settings = CalibrateSettings

    def fingerprint(self, ctx: StageContext):
        s = ctx.session
        calib = [s.camera_dir(c, kind="calib") / "frames.csv" for c in s.rig.camera_names]
        fp = {"calib": s.frames_digest(kind="calib"), "board": repr(s.rig.board)}
        if not any(p.exists() for p in calib) or self._reusable(ctx):
            fp["kept"] = file_digest([s.calibration_path])
        return fp

    @staticmethod
    def _reusable(ctx: StageContext) -> bool:
        """True when session/calibration.json was made by ``reconstruct calibrate`` from these very calibration
        images and board, and this run asks for no calibrate option of its own: the user's calibration is kept
        (not recomputed, and not replaced by one with default settings)."""
        s = ctx.session
        if any(str(k).startswith("calibrate.") for k in ctx.config.options) or not s.calibration_path.exists():
            return False
        try:
            src = s.read_calibration().get("source") or {}
        except Exception:  # a damaged file is recalibrated (and its problem reported by the solve that replaces it)
            return False
        return (src.get("made_by") == "reconstruct calibrate" and src.get("calib") == s.frames_digest(kind="calib")
                and src.get("board") == repr(s.rig.board))

    def run(self, ctx: StageContext, out: Path) -> None:
        from reconstruct.calibration import cache
        from reconstruct.calibration.result import RigCalibration
        from reconstruct.calibration.rig_solve import calibrate_session
        from reconstruct.session import atomic_write_json

        s = ctx.session
        st = ctx.settings[self.name]
        has_calib = any(s.frames(c, kind="calib") for c in s.rig.camera_names)
        if (not has_calib and s.calibration_path.exists()) or self._reusable(ctx):
            cal = s.calibration()
            why = ("made by `reconstruct calibrate` from these calibration images" if has_calib else
                   "no calibration images")
            log.info("calibrate: keeping the existing %s (%s)", s.calibration_path, why)
            atomic_write_json(out / "calibration.json", cal.to_dict())
            return
        options = st.solver_options(s.rig.hero.name)
        key = cache.session_key(s, options, st.step)
        data = cache.load(key) if key else None
        if data is not None:  # another take with the same images, board, rig and settings: its solution
            cal = RigCalibration.from_dict(data)
            log.info("calibrate: these calibration images were solved for another take with the same board, rig "
                     "and settings; its calibration kept from %s", cache.cache_dir())
        else:
            cal = calibrate_session(s, options, progress=ctx.progress, step=st.step, executor=ctx.executor)
            data = cal.to_dict()
            if key:
                cache.store(key, data)
        atomic_write_json(out / "calibration.json", data)
        s.write_calibration(data)
        log.info("calibrate: RMS %.3f px over %d views, %d warning(s)", cal.quality["rms_px"], cal.quality["views"],
                 len(cal.warnings))


# -- report ----------------------------------------------------------------------------------------------------------
def _bars(values: dict[str, float], width: int = 360, height: int = 60) -> str:
    """Inline SVG bar chart of per-view RMS (px)."""
    if not values:
        return ""
    vmax = max(max(values.values()), 1e-6)
    n = len(values)
    bw = width / n
    bars = "".join(
        f'<rect x="{i * bw:.1f}" y="{height - v / vmax * (height - 12):.1f}" width="{max(bw - 1, 1):.1f}" '
        f'height="{v / vmax * (height - 12):.1f}" fill="#4a7"><title>view {k}: {v:.3f} px</title></rect>'
        for i, (k, v) in enumerate(values.items()))
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{bars}'
            f'<text x="0" y="10" font-size="10">max {vmax:.2f} px</text></svg>')


def calibration_html(cal: dict) -> str:
    """HTML fragment for a calibration.json record."""
    rows = []
    for name, rec in cal.get("cameras", {}).items():
        q = rec.get("quality", {})
        std = q.get("std", {})
        K = rec["K"]
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
                name, rec.get("model", ""), "x".join(map(str, rec["image_size"])), f"{K[0][0]:.1f} / {K[1][1]:.1f}",
                f"{K[0][2]:.1f}, {K[1][2]:.1f}", f"{q.get('rms_px', float('nan')):.3f}", q.get("views", ""),
                q.get("corners", ""), q.get("outliers", ""), f"{q.get('board_error_mm', float('nan')):.2f}",
                f"{q.get('coverage', float('nan')):.0%}",
                f"{std.get('fx', float('nan')):.2f} / {std.get('cx', float('nan')):.2f}",
                f"{std.get('rotation_deg', 0):.3f}° / {std.get('translation_mm', 0):.2f} mm",
                q.get("lens_model", {}).get("tangential", "")))
            + f"<td>{_bars(q.get('per_view_rms_px', {}))}</td></tr>")
    head = ("<tr><th>camera</th><th>model</th><th>size</th><th>fx / fy</th><th>cx, cy</th><th>RMS px</th>"
            "<th>views</th><th>corners</th><th>outliers</th><th>board err mm</th><th>coverage</th>"
            "<th>σ fx / σ cx px</th><th>σ rotation / translation</th><th>p1, p2</th><th>RMS per view</th></tr>")
    rq = cal.get("quality", {})
    warnings = rq.get("warnings", [])
    warn_html = ("<p><b>Do not trust this calibration yet:</b></p><ul>"
                 + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>") if warnings else \
        "<p>No warnings: enough views, image coverage and low residuals for every camera.</p>"
    summary = (f"<p>Reference (world) camera: <b>{html.escape(str(cal.get('reference', '')))}</b>; "
               f"rig RMS {rq.get('rms_px', float('nan')):.3f} px over {rq.get('views', '?')} views; "
               f"shared views per pair: {html.escape(json.dumps(rq.get('shared_views', {})))}</p>"
               + _board_shape_html(rq.get("board_shape", {}), cal.get("board")))
    return f"<section><h2>Calibration</h2>{summary}{warn_html}<table>{head}{''.join(rows)}</table></section>"


def _board_shape_html(shape: dict, board: dict | None = None) -> str:
    """The board model: its estimated deviation from the print (with a picture), or why it was held rigid."""
    test = shape.get("test")
    why = f" (F-test: F = {test['F']:.1f}, critical {test['F_critical']:.1f})" if test else ""
    if shape.get("refined"):
        return (f"<p>Board shape estimated{why}: corners up to {shape['max_offset_mm']:.2f} mm (RMS "
                f"{shape['rms_offset_mm']:.2f} mm) from the nominal print, worst corner {shape['worst_corner']}.</p>"
                + _board_shape_svg(shape, board))
    if test:
        return f"<p>Board held rigid: no deviation from the nominal print beyond noise{why}.</p>"
    return "<p>Board held rigid (as asked).</p>" if shape else ""


def _board_shape_svg(shape: dict, board: dict | None, size: int = 260) -> str:
    """The board's inner corners at their nominal positions (grey dots) with arrows to where the calibration
    found them in the board plane (exaggerated so the largest is 0.4 squares) and the out-of-plane offset as the
    dot's colour (red: towards the cameras, blue: away). Empty without the board's spec."""
    if not board or not shape.get("offsets_mm"):
        return ""
    from reconstruct.calibration.boards import corner_points
    from reconstruct.rig import BoardSpec

    try:
        spec = BoardSpec(**{**board, "squares": tuple(board["squares"])})
        q = corner_points(spec)
    except Exception:  # a board record this version cannot read: the numbers above still stand
        return ""
    ids = [int(i) for i in shape["offsets_mm"]]
    off = np.array([shape["offsets_mm"][str(i)] for i in ids], float)
    p = q[ids, :2]
    lo, hi = p.min(0), p.max(0)
    span = float(max(hi - lo)) or 1.0
    sc = (size - 40) / span
    k = 0.4 * spec.square_size * 1000 / max(float(np.abs(off[:, :2]).max()), 1e-9)  # mm -> drawn mm
    zmax = max(float(np.abs(off[:, 2]).max()), 1e-9)
    parts = []
    for (x, y), (dx, dy, dz) in zip(p, off):
        X, Y = 20 + (x - lo[0]) * sc, 20 + (y - lo[1]) * sc
        X2, Y2 = X + dx * k / 1000 * sc, Y + dy * k / 1000 * sc
        c = int(round(255 * min(1.0, abs(dz) / zmax)))
        col = f"rgb({c},60,60)" if dz < 0 else f"rgb(60,60,{c})"
        parts.append(f'<line x1="{X:.1f}" y1="{Y:.1f}" x2="{X2:.1f}" y2="{Y2:.1f}" stroke="#333" stroke-width="1.5"/>'
                     f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="3.5" fill="{col}"><title>corner offset '
                     f'({dx:.2f}, {dy:.2f}, {dz:.2f}) mm</title></circle>')
    h = int(40 + (hi[1] - lo[1]) * sc)
    return (f'<svg width="{size}" height="{h}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
            "<p><small>Board corners (board frame): arrows exaggerated to 0.4 squares for the largest in-plane "
            "offset; colour: out of plane (red towards the cameras, blue away).</small></p>")


class CalibrationSection:
    """QC report section: residuals per camera and view, coverage, uncertainty, warnings."""

    name = "calibration"
    order = 20

    def html(self, ctx: StageContext) -> str | None:
        s = ctx.session
        if not s.calibration_path.exists():
            return None
        return calibration_html(s.read_calibration())


@hookimpl
def register_stages():
    return [CalibrateStage()]


@hookimpl
def register_report_sections():
    return [CalibrationSection]
