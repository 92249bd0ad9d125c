"""Built-in QC report sections (registered by ``plugins/report_stage.py`` through ``register_report_sections``).

Each is a :class:`reconstruct.components.ReportSection`: ``name``, ``order`` and ``html(ctx)`` returning a fragment
or None when it has nothing to show. Other plugins add theirs the same way (the calibration plugin adds the
calibration residual plots, the sync plugin its matching report). Orders: 0 summary, 10 rig, 10 sync (plugin),
20 calibration (plugin), 30 timeline, 40 fit, 50 plates,
60 flags, 90 provenance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..options import option
from . import svg
from .data import FlagResults, ReportData, compute_flags
from .page import esc, figure, fmt, table
from .thumbs import Thumb, ThumbPlan, thumb_uri

if TYPE_CHECKING:  # pragma: no cover
    from ..stage import StageContext


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """``--option report.KEY=VALUE``: the thresholds of the artist flags (docs/report.md)."""

    stiff_expression: float = option(0.04, "flag frames whose expression landmarks move more than this, IOD")
    unnatural_eyes: float = option(0.03, "flag frames whose eyelid/iris landmarks move more than this, IOD")
    gaze_deg: float = option(5.0, "flag frames whose gaze differs from the plate's by more than this, degrees")
    seams: float = option(5.0, "flag an edge along the paste-back boundary higher than this, grey levels")
    expression_pct: float = option(4.0, "flag frames whose mouth/eye landmarks are further than this from the "
                                        "plate's moved by the edit's intended shift, % IOD")
    detail_loss: float = option(0.15, "flag frames whose skin keeps less than 1 - this of the plate's finest "
                                      "detail (pores, grain)")
    dark_holes_pct: float = option(0.2, "flag frames where more than this % of the face turned much darker")
    flicker_k: float = option(5.0, "flicker: robust sigmas above the take's frame-to-frame change")
    flicker_levels: float = option(2.0, "flicker: and at least this many grey levels")

    def __post_init__(self) -> None:
        if min(asdict(self).values()) <= 0:
            raise ValueError("report thresholds must be above 0")

FLAG_HELP = {
    "stiff_expression": "the output's mouth/brow/chin landmarks do not follow the performance (IOD, pose removed)",
    "unnatural_eyes": "the output's eyelid/iris landmarks differ from the plate's (IOD, pose removed), or its gaze "
                      "does (hero view, against the fitted head; 5 degrees = the threshold)",
    "flicker": "the edit (composite - plate) changes abruptly from one frame to the next (grey levels)",
    "seams": "an edge along the paste-back mask boundary that the plate does not have (grey levels)",
    "expression_lost": "the result's mouth and eye landmarks are off the plate's (moved by the edit's intended "
                       "shift): the performance changed (% of the inter-ocular distance)",
    "detail_lost": "the result's skin lost its finest detail (pores, grain): a blurred or CG-looking face",
    "dark_holes": "part of the face turned much darker than the plate (open nostrils or mouth of a render)",
}


def _cached(ctx: "StageContext", key: str, make):
    """Per-run memo (sections share the loaded data and the flags)."""
    k = f"report.{key}"
    if k not in ctx.memo:
        ctx.memo[k] = make()
    return ctx.memo[k]


def report_settings(ctx: "StageContext") -> ReportSettings:
    st = ctx.settings["report"] if "report" in ctx.settings else None
    return st if isinstance(st, ReportSettings) else ReportSettings()


def report_data(ctx: "StageContext") -> ReportData:
    return _cached(ctx, "data", lambda: ReportData.load(ctx.session, ctx.config.method))


def report_flags(ctx: "StageContext") -> FlagResults:
    """The artist flags: the four image checks plus the measures of the report's own method."""
    return _cached(ctx, "flags", lambda: _flags(ctx))


def _base_flags(ctx: "StageContext") -> FlagResults:
    return _scan(ctx)[0]


def _scan(ctx: "StageContext"):
    """(flags, the report's own method's measures or None, face masks, {other method: its measures}): one pass
    over the plates, each plate and composite read once for both, each plate and its face masks once for every
    method's results too (cached). Another method whose frames the pass did not all measure (frames the report's
    own method has no plate of, an error) is left out of the dict: :func:`report_measures` measures it after."""
    def make():
        from .data import _detector_class
        from .measures import FaceMasks, MethodMeasurer, measured_frames
        from .scan import spreads

        d = report_data(ctx)
        executor = getattr(ctx, "executor", None)
        # the provenance section's hashing (~0.6 CPU-s on the bench take), on a thread from now when the pass will
        # have workers: it overlaps the driver's own preparation below (one core idle) as well as the pass
        early = _early_thread(ctx) if spreads(executor, len(d.outputs)) else None
        masks = FaceMasks(d, ctx.components)
        measurer, others = None, {}
        if d.outputs:  # the detector's class only: the landmarks come from the pass (its own detectors)
            det = _detector_class(ctx.components)
            measurer = MethodMeasurer(d, d.method, masks, det, measured_frames(d, d.method))
            others = {m: MethodMeasurer(d, m, masks, det, measured_frames(d, m)) for m in d.methods if m != d.method}
        try:
            flags = compute_flags(d, ctx.components, asdict(report_settings(ctx)), measurer=measurer,
                                  executor=executor, progress=getattr(ctx, "progress", None), thumbs=thumb_plan(d),
                                  idle=None if early is not None else lambda: _verify_manifest_early(ctx),
                                  others=others)
        finally:
            if early is not None:
                early.join()
        done = {m: o.result() for m, o in others.items() if o.failed is None and not o.missing()}
        if measurer is None:
            return flags, None, masks, done
        from .data import read_output

        missing = measurer.missing()  # frames past the flags' own limit: measured here, with a detector
        if missing:
            from .data import _detector

            measurer.detector = _detector(ctx.components)
            for f in missing:
                measurer.add(f, d.before(f), read_output(d.outputs[f]))
        return flags, measurer.result(), masks, done

    return _cached(ctx, "scan", make)


def _early_thread(ctx: "StageContext"):
    """:func:`_verify_manifest_early` started on a thread (joined by the caller)."""
    import threading

    from .scan import _logged

    t = threading.Thread(target=_logged, args=(lambda: _verify_manifest_early(ctx),), name="report-manifest",
                         daemon=True)
    t.start()
    return t


def _verify_manifest_early(ctx: "StageContext") -> None:
    """Hash the manifest's files for :class:`ProvenanceSection` while the report's workers scan (~0.5 s of the
    bench take's 209 files, otherwise after the pass); the outcome, or the exception, in ``ctx.memo``."""
    from ..provenance import verify_manifest

    try:
        ctx.memo["report.manifest_status"] = verify_manifest(ctx.session)
    except Exception as exc:  # raised where the section would have raised it
        ctx.memo["report.manifest_status"] = exc


def _flags(ctx: "StageContext") -> FlagResults:
    from . import flags as F

    st = report_settings(ctx)
    res = _base_flags(ctx)
    m = report_measures(ctx).get(report_data(ctx).method)
    if m is not None and len(m.frames):
        res.series["expression_lost"] = F._series("expression_lost", m.frames, m.expression_iod_pct,
                                                  st.expression_pct, "% IOD")
        res.series["detail_lost"] = F._series("detail_lost", m.frames, 1.0 - m.detail_ratio, st.detail_loss,
                                              "fraction")
        res.series["dark_holes"] = F._series("dark_holes", m.frames, m.dark_pct, st.dark_holes_pct, "% face")
    return res


def report_measures(ctx: "StageContext") -> dict:
    """Method -> :class:`~.measures.MethodMeasures` of every method with plates (the report's own first)."""
    from .measures import all_measures

    _, own, masks, done = _scan(ctx)
    return _cached(ctx, "measures", lambda: all_measures(report_data(ctx), ctx.components, own=own, masks=masks,
                                                         done=done))


class SummarySection:
    name = "summary"
    order = 0

    def html(self, ctx: "StageContext") -> str | None:
        d = report_data(ctx)
        s = ctx.session
        m = s.meta
        flagged = report_flags(ctx).flagged_frames()
        rows = [("session", m.name), ("rig", f"{m.rig} ({', '.join(s.rig.camera_names)})"), ("fps", fmt(m.fps)),
                ("created", m.created), ("output frames", len(d.framesets)),
                ("composited frames", len(d.outputs)), ("frames flagged for an artist", len(flagged)),
                ("method", ctx.config.method or (d.stages.get("age", {}) and _age_method(s) or "-")),
                ("consent records", len(m.consent))]
        parts = [table(None, rows)]
        if m.notes:
            parts.append(f'<p class="note">{esc(m.notes)}</p>')
        if d.stages:
            order = sorted(d.stages.items(), key=lambda kv: kv[1].get("seconds", 0), reverse=True)
            parts.append("<h3>Stages</h3>" + table(("stage", "version", "seconds", "cache key"),
                         [(n, i.get("version", "?"), fmt(float(i.get("seconds", float("nan"))), 4),
                           str(i.get("key", ""))[:12]) for n, i in order], numeric=(2,)))
        for n in d.notes:
            parts.append(f'<div class="warn">{esc(n)}</div>')
        return "".join(parts)


def _age_method(session) -> str:
    import json

    p = session.stage_dir("age") / "edits.json"
    try:
        return json.loads(p.read_text()).get("method", "-")
    except (OSError, ValueError):
        return "-"


class RigSection:
    name = "rig"
    order = 10

    def html(self, ctx: "StageContext") -> str | None:
        rig = ctx.session.rig
        rows = [(c.name, c.role, c.sensor, f"{c.resolution[0]}x{c.resolution[1]}", c.backend)
                for c in rig.cameras]
        out = [table(("camera", "role", "sensor", "resolution", "backend"), rows)]
        cal = ctx.session.calibration_path
        others = [n for n in ctx.components.all("report_section") if "calib" in n]
        if cal.exists() and not others:
            out.append(_calibration_fallback(ctx))
        elif not cal.exists():
            out.append('<p class="note">not calibrated yet (no calibration.json): run the calibrate stage.</p>')
        return "".join(out)


def _calibration_fallback(ctx) -> str:
    """RMS per camera from calibration.json when no calibration plugin section is installed."""
    try:
        data = ctx.session.read_calibration()
    except Exception as exc:
        return f'<div class="warn">calibration.json unreadable: {esc(exc)}</div>'
    names, rms = [], []
    for c in data.get("cameras", []):
        q = c.get("quality", {}) if isinstance(c.get("quality"), dict) else {}
        v = q.get("rms_px", c.get("rms_px", c.get("rms")))
        names.append(c.get("name", "?"))
        rms.append(float(v) if isinstance(v, (int, float)) else float("nan"))
    if not names:
        return ""
    return svg.bar_chart(names, {"RMS reprojection error": rms}, title="calibration RMS per camera",
                         y_label="px", height=200)


class SyncTimelineSection:
    name = "timeline"
    title = "Sync timeline"
    order = 30

    def html(self, ctx: "StageContext") -> str | None:
        import json

        s = ctx.session
        d = report_data(ctx)
        rows: dict[str, dict[str, list[float]]] = {}
        t0 = None
        for cam in s.rig.camera_names:
            recs = s.frames(cam)
            if recs and t0 is None:
                t0 = min(r.t_capture_ns for r in recs)
            rows[cam] = {k: [r.t_capture_ns for r in recs if r.status == k] for k in ("ok", "dropped", "gap")}
        if t0 is None:
            return '<p class="note">no frames recorded.</p>'
        hero = s.rig.hero.name
        unmatched = {c: [fs.t_ns for fs in d.framesets if fs.indices.get(c) is None] for c in s.rig.camera_names}
        lanes: dict[str, dict[str, list[float]]] = {}
        for cam, ev in rows.items():
            lanes[cam] = {k: [(t - t0) / 1e9 for t in v] for k, v in ev.items() if v}
            if unmatched[cam]:
                lanes[cam]["missing"] = [(t - t0) / 1e9 for t in unmatched[cam]]
        allt = [t for ev in lanes.values() for v in ev.values() for t in v]
        chart = svg.lanes((min(allt), max(allt)), lanes, title="capture timeline: frames per camera (ticks), "
                          "drops and frame sets without a match", x_label=f"seconds since first frame ({hero} clock)")
        stats = []
        rep = s.stage_dir("sync") / "report.json"
        srep = json.loads(rep.read_text()) if rep.exists() else {}
        for cam, ev in rows.items():
            stats.append((cam, len(ev["ok"]), len(ev["dropped"]), len(ev["gap"]), len(unmatched[cam]),
                          fmt(srep.get("offsets_ns", {}).get(cam, float("nan")) / 1e6
                              if cam in srep.get("offsets_ns", {}) else float("nan"), 4)))
        body = chart + table(("camera", "frames ok", "dropped", "gap", "frame sets without this camera",
                              "clock offset (ms)"), stats, numeric=(1, 2, 3, 4, 5))
        if any(unmatched[c] for c in s.rig.camera_names):
            body += ('<p class="note">"missing": output frames whose frame set has no image of that camera '
                     '(dropped or out of sync tolerance); the fit uses the other views there.</p>')
        return body


def vertex_jitter_mm(vertices: np.ndarray) -> np.ndarray:
    """(T,) mean over vertices of |v[t-1] - 2 v[t] + v[t+1]| in mm (second temporal difference: motion that is not
    smooth); NaN at the first and last frame. ``vertices``: (T, V, 3) metres."""
    v = np.asarray(vertices, np.float64)
    out = np.full(v.shape[0], np.nan)
    if v.shape[0] >= 3:
        out[1:-1] = np.linalg.norm(v[:-2] - 2 * v[1:-1] + v[2:], axis=-1).mean(-1) * 1000.0
    return out


class FitSection:
    name = "fit"
    order = 40

    def html(self, ctx: "StageContext") -> str | None:
        fits = report_data(ctx).fits
        if fits is None:
            return '<p class="note">the fit stage has not run: no per-frame residuals yet.</p>'
        frames = np.asarray(fits.frames)
        parts = []
        if fits.residual_px is not None and len(fits.cameras):
            series = {c: fits.residual_px[:, i] for i, c in enumerate(fits.cameras)}
            parts.append(svg.line_chart(frames, series, title="landmark reprojection RMS per camera",
                                        y_label="px"))
            med = {c: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan") for c, v in series.items()}
            parts.append(table(("camera", "median RMS (px)", "max RMS (px)"),
                               [(c, fmt(med[c]), fmt(float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")))
                                for c, v in series.items()], numeric=(1, 2)))
        jit = vertex_jitter_mm(fits.vertices)
        parts.append(svg.line_chart(frames, {"jitter": jit}, title="vertex jitter (second temporal difference, "
                                    "mean over vertices)", y_label="mm"))
        invalid = frames[~np.asarray(fits.valid, bool)]
        if invalid.size:
            parts.append(f'<div class="warn">{invalid.size} frame(s) could not be fitted (interpolated): '
                         f'{esc(", ".join(map(str, invalid[:40])))}</div>')
        return "".join(parts)


# the pictures the sections show (made in the report's one pass over the take: .thumbs)
FLAG_THUMBS = (Thumb("flag_plate", "plate", True, 180), Thumb("flag_output", "output", True, 180))
PLATE_THUMBS = (Thumb("before", "plate", False, 360), Thumb("after", "output", False, 360))
PLATE_FACE_THUMBS = (Thumb("face_before", "plate", True, 200), Thumb("face_after", "output", True, 200))
METHOD_THUMBS = (Thumb("method_plate", "plate", True, 220), Thumb("method_own", "output", True, 220))


def _three(frames: list[int]) -> list[int]:
    """The first, middle and last of ``frames`` (the frames the strips show)."""
    return sorted({frames[0], frames[len(frames) // 2], frames[-1]}) if frames else []


def thumb_plan(d: ReportData) -> ThumbPlan:
    """The pictures the sections will ask for: every frame's flag thumbnails (which frames are flagged is known only
    after the pass), the plates' and the methods' strips of their three frames."""
    from .measures import measured_frames

    some = [(f, PLATE_THUMBS + PLATE_FACE_THUMBS) for f in _three(list(d.outputs))]
    methods = list(d.methods) or ([d.method] if d.outputs else [])
    if methods:
        common = set.intersection(*(set(int(f) for f in measured_frames(d, m)) for m in methods))
        some += [(f, METHOD_THUMBS) for f in _three(sorted(common))]
    return ThumbPlan(FLAG_THUMBS, tuple(some))


class _Pictures:
    """One frame's pictures for a section: from the pass's store, else made from the frame (read once, only then)."""

    def __init__(self, ctx: "StageContext", frame: int) -> None:
        res = report_flags(ctx)
        self.d, self.frame, self.store, self.box = report_data(ctx), frame, res.thumbs, res.boxes.get(frame)
        self._read: dict[str, np.ndarray | None] = {}

    def uri(self, thumb: Thumb) -> str | None:
        """``thumb``'s data URI, or None when its image cannot be read."""
        u = self.store.get(self.frame, thumb.name) if self.store is not None else None
        if u is not None:
            return u
        if thumb.source not in self._read:
            self._read[thumb.source] = (self.d.before if thumb.source == "plate" else self.d.after)(self.frame)
        img = self._read[thumb.source]
        return None if img is None else thumb_uri(thumb, img, self.box)


class PlatesSection:
    name = "plates"
    order = 50

    def html(self, ctx: "StageContext") -> str | None:
        d = report_data(ctx)
        if not d.outputs:
            return '<p class="note">no composited hero plates yet (the composite stage has not run).</p>'
        frames = list(d.outputs)
        boxes = report_flags(ctx).boxes
        figs = []
        for f in _three(frames):
            pics = _Pictures(ctx, f)
            b, a = (pics.uri(t) for t in PLATE_THUMBS)
            if b is None or a is None:
                continue
            figs.append(f'<div>{figure(b, f"frame {f} before")}</div><div>{figure(a, f"frame {f} after")}</div>')
            if f in boxes:
                fb, fa = (pics.uri(t) for t in PLATE_FACE_THUMBS)
                figs.append(f'<div>{figure(fb, "face before")}</div><div>{figure(fa, "face after")}</div>')
        return ('<p class="note">hero plate before (left) and after (right) at the first, middle and last '
                f'composited frame ({len(frames)} composited frames).</p><div class="thumbs">{"".join(figs)}</div>')


MEASURE_COLUMNS = (("expression_iod_pct_mean", "expression off, mean % IOD"),
                   ("expression_iod_pct_worst", "worst frame % IOD"),
                   ("detail_ratio", "fine detail kept"), ("dark_pct_worst", "new dark holes, worst % face"),
                   ("age_features_reduced", "age features reduced"), ("flicker_ratio", "flicker vs plate"))


class MethodsSection:
    """The methods that ran on this take, side by side: the photographic measures of each one's plates
    (:mod:`.measures`) and before/after strips of the same frames."""

    name = "methods"
    order = 55

    def html(self, ctx: "StageContext") -> str | None:
        ms = report_measures(ctx)
        if not ms:
            return None
        d = report_data(ctx)
        rows = []
        for method, m in ms.items():
            s = m.summary()
            rows.append([method or "?", s["frames"]] + [("-" if s[k] is None else fmt(s[k], 3)) for k, _ in
                                                        MEASURE_COLUMNS])
        parts = ['<p class="note">Measured on the plates, over the face the fit projects into the hero view: '
                 "landmarks found on the result against the plate's (moved by what the method meant to move), the "
                 "finest skin detail kept (1 = all), new dark holes, wrinkle-band energy removed in the age regions, "
                 "and the face's frame-to-frame change against the plate's (1 = as steady).</p>",
                 table(("method", "frames") + tuple(h for _, h in MEASURE_COLUMNS), rows,
                       numeric=tuple(range(1, 2 + len(MEASURE_COLUMNS))))]
        common = sorted(set.intersection(*(set(int(f) for f in m.frames) for m in ms.values())))
        if common:
            from .data import read_output

            figs = []
            for f in _three(common):
                pics = _Pictures(ctx, f)
                b = pics.uri(METHOD_THUMBS[0])
                if b is None:
                    continue
                cells = [figure(b, f"{f} plate")]
                for method in ms:
                    if method == d.method and d.outputs.get(f) is not None:  # the report's own: from the pass
                        a = pics.uri(METHOD_THUMBS[1])
                    else:
                        p = d.methods.get(method, d.outputs if method == d.method else {}).get(f)
                        img = read_output(p) if p is not None else None
                        a = None if img is None else thumb_uri(METHOD_THUMBS[1], img, pics.box)
                    if a is not None:
                        cells.append(figure(a, f"{f} {method or '?'}"))
                figs.append(f'<div class="thumbs">{"".join(cells)}</div>')
            parts.append("<h3>Before and after</h3>" + "".join(figs))
        return "".join(parts)


class FlagsSection:
    name = "flags"
    order = 60

    def html(self, ctx: "StageContext") -> str | None:
        res = report_flags(ctx)
        parts = []
        flagged = res.flagged_frames()
        if res.series and not flagged:
            parts.append('<div class="ok">no frame flagged by the checks that ran.</div>')
        elif flagged:
            parts.append(f'<div class="bad">{len(flagged)} frame(s) flagged for an artist.</div>')
        rows = []
        for name in FLAG_HELP:
            if name in res.series:
                s = res.series[name]
                rows.append((name, FLAG_HELP[name], f"{fmt(s.threshold)} {s.unit}", len(s.flagged),
                             ", ".join(map(str, s.flagged[:30])) + (" ..." if len(s.flagged) > 30 else "")))
            else:
                rows.append((name, FLAG_HELP[name], "-", "not run", res.skipped.get(name, "")))
        parts.append(table(("check", "what it means", "threshold", "flagged", "frames"), rows, numeric=(3,)))
        for name, s in res.series.items():
            if np.isfinite(s.score).any():
                parts.append(svg.line_chart(s.frames, {name: s.score}, title=f"{name} per frame",
                                            y_label=s.unit, threshold=s.threshold, marks=list(s.flagged), height=180))
        if res.gaze_deg is not None and np.isfinite(res.gaze_deg).any():
            s = res.series["unnatural_eyes"]
            parts.append(svg.line_chart(s.frames, {"left eye": res.gaze_deg[:, 0], "right eye": res.gaze_deg[:, 1]},
                                        title="gaze: output vs plate per frame", y_label="degrees",
                                        threshold=report_settings(ctx).gaze_deg, height=180))
        if flagged:
            figs = []
            for f, names in list(flagged.items())[:24]:
                pics = _Pictures(ctx, f)
                b, a = (pics.uri(t) for t in FLAG_THUMBS)
                if b is None or a is None:
                    continue
                pills = "".join(f'<span class="pill flag">{esc(n)}</span>' for n in names)
                figs.append(f'<div><div>{pills}</div><div class="thumbs">{figure(b, f"{f} plate")}'
                            f'{figure(a, f"{f} output")}</div></div>')
            parts.append("<h3>Flagged frames</h3>" + f'<div class="thumbs">{"".join(figs)}</div>')
        return "".join(parts)


class ProvenanceSection:
    name = "provenance"
    order = 90

    def html(self, ctx: "StageContext") -> str | None:
        from ..provenance import read_manifest, verify_manifest

        s = ctx.session
        try:
            files = read_manifest(s)
            status = ctx.memo.pop("report.manifest_status", None)  # hashed while the pass ran, if it had workers
            if isinstance(status, Exception):
                raise status
            status = verify_manifest(s) if status is None else status
        except Exception as exc:
            return f'<div class="warn">{esc(exc)}</div>'
        consent = [(c.performer, c.reference, c.granted_by, c.date, ", ".join(c.scope), c.document or "-")
                   for c in s.meta.consent]
        parts = ["<h3>Consent</h3>", table(("performer", "reference", "granted by", "date", "scope", "document"),
                                           consent) if consent else '<p class="note">no consent records.</p>']
        if not files:
            parts.append('<p class="note">no output files recorded in out/manifest.json yet.</p>')
            return "".join(parts)
        counts = {k: sum(1 for v in status.values() if v == k) for k in ("ok", "changed", "missing")}
        by_stage: dict[str, int] = {}
        methods: set[str] = set()
        for key, e in files.items():
            prov = e.get("provenance", {})
            by_stage[prov.get("stage") or "-"] = by_stage.get(prov.get("stage") or "-", 0) + 1
            if prov.get("method"):
                methods.add(prov["method"])
        parts.append(f"<h3>Manifest (out/manifest.json)</h3><p>{len(files)} output files with provenance; "
                     f"{counts['ok']} match their recorded sha256, {counts['changed']} changed since, "
                     f"{counts['missing']} missing. Methods: {esc(', '.join(sorted(methods)) or 'none')}.</p>")
        parts.append(table(("stage", "files"), sorted(by_stage.items()), numeric=(1,)))
        bad = [(k, v) for k, v in status.items() if v != "ok"][:20]
        if bad:
            parts.append('<div class="warn">' + esc("; ".join(f"{k}: {v}" for k, v in bad)) + "</div>")
        first = next(iter(files.values())).get("provenance", {})
        plugins = first.get("plugins", {})
        if plugins:
            parts.append("<h3>Plugins that made the outputs</h3>" + table(("plugin", "distribution and version"),
                                                                         sorted(plugins.items())))
        return "".join(parts)


BUILTIN_SECTIONS = (SummarySection, RigSection, SyncTimelineSection, FitSection, PlatesSection, MethodsSection,
                    FlagsSection, ProvenanceSection)


def render_sections(ctx: "StageContext") -> list[tuple[str, str, str]]:
    """Every registered section's fragment, in ``order``; a section that raises becomes an error box (the report
    must not fail because one section did)."""
    import logging

    log = logging.getLogger(__name__)
    comps = ctx.components.all("report_section")
    items = []
    for name, comp in comps.items():
        inst = comp() if isinstance(comp, type) else comp
        items.append((getattr(inst, "order", 100), name, inst))
    out = []
    for order, name, inst in sorted(items, key=lambda x: (x[0], x[1])):
        try:
            frag = inst.html(ctx)
        except Exception as exc:
            log.warning("report section %s failed: %s: %s", name, type(exc).__name__, exc, exc_info=True)
            frag = f'<div class="bad">this section failed: {esc(type(exc).__name__)}: {esc(exc)}</div>'
        if frag:
            heading = getattr(inst, "title", None) or name.replace("_", " ").capitalize()
            out.append((name, heading, frag))
    return out
