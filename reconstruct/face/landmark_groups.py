"""Index groups of MediaPipe Face Mesh's 478 landmarks shared by several parts of the system (the fit's mouth
terms, the QC report's landmark groups). The iBUG-68 groups are in :mod:`.features`."""

from __future__ import annotations

#: MediaPipe's outer lip contour: lower lip from the right corner 61 to the left corner 291, then the upper lip
MP_OUTER_LIPS: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269,
                                  270, 409)
#: MediaPipe's inner lip contour (its corners 78 / 308 included): lower half, then upper half
MP_INNER_LIPS: tuple[int, ...] = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311,
                                  310, 415)
