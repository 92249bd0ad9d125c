"""Built-in plugin ``provenance``: after every stage that ran, every file of its folder gets an entry in the
session manifest (``out/manifest.json``) and every PNG without an embedded provenance record gets one.

Stages that write plates through :mod:`reconstruct.provenance` (``write_png``/``write_exr``) record richer entries
themselves (their own settings and inputs); those are kept. Disable with ``--disable-plugin provenance``.
"""

from __future__ import annotations

import logging

from reconstruct import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def on_stage_complete(ctx, stage, skipped, seconds):
    if skipped:
        return
    from reconstruct.provenance import record_for_stage, record_stage_outputs

    folder = ctx.session.stage_dir(stage)
    if not folder.is_dir():
        return
    n = record_stage_outputs(ctx.session, folder, record_for_stage(ctx, stage))
    log.info("provenance: %d file(s) of stage %s added to the manifest", n, stage)
