"""Synthetic sessions with ground truth (for the demo, tests and benchmarks).

The pipeline never reads ground truth: it is written *beside* the session, in ``<session>.truth/``.
"""

from .timeline import TimelineSpec, make_timeline
from .session import SynthSpec, Truth, generate_session, load_truth, truth_dir

__all__ = ["SynthSpec", "TimelineSpec", "Truth", "generate_session", "load_truth", "make_timeline", "truth_dir"]
