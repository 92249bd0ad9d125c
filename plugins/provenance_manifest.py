"""Built-in plugin ``provenance``: after every stage that ran, every file of its folder gets an entry in the
session manifest (``out/manifest.json``) and every PNG without an embedded provenance record gets one.

Stages that write plates through :mod:`reconstruct.provenance` (``write_png``/``write_exr``) record richer entries
themselves (their own settings and inputs); those are kept. Files whose digests the stage handed over
(:func:`reconstruct.provenance.hand_over_digests`: the age and render stages' per-frame ``.npz``, hashed by the
workers that wrote them) are recorded without reading them again. Disable with ``--disable-plugin provenance``.
"""

from __future__ import annotations

import logging

from reconstruct import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def on_stage_complete(ctx, stage, skipped, seconds):
    if skipped:
        return
    from reconstruct.provenance import handed_over_digests, record_for_stage, record_stage_outputs

    known = handed_over_digests(ctx, stage)  # what the stage's workers hashed as they wrote it
    folder = ctx.session.stage_dir(stage)
    if not folder.is_dir():
        return
    n = record_stage_outputs(ctx.session, folder, record_for_stage(ctx, stage), known=known)
    log.info("provenance: %d file(s) of stage %s added to the manifest", n, stage)
