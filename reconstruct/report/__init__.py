"""The QC report: one self-contained HTML page per session (``out/report/report.html``).

:mod:`.flags` (artist flags as pure functions over arrays), :mod:`.data` (what the report reads from a session),
:mod:`.sections` (built-in sections), :mod:`.svg` (inline charts), :mod:`.page` (the page itself). The stage and
the section registration live in ``plugins/report_stage.py``; ``docs/report.md`` is the user documentation.
"""
