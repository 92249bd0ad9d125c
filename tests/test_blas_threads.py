"""reconstruct/blas_threads.py: OpenBLAS's idle threads sleep instead of spinning, in every process of a run."""

from __future__ import annotations

import os
import textwrap

from tests.subproc import run_python

# What OPENBLAS_THREAD_TIMEOUT was when numpy (which loads OpenBLAS, which reads it once) was first imported.
_AT_NUMPY_IMPORT = textwrap.dedent("""
    import importlib.abc, os, sys
    seen = []
    class Probe(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "numpy" and not seen:
                seen.append(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
            return None
    sys.meta_path.insert(0, Probe())
    import reconstruct.cli
    assert "numpy" in sys.modules  # the command line loads it: the probe saw that import
    print(seen[0])
""")


def test_timeout_is_set_before_numpy_loads_openblas(monkeypatch):
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    assert run_python(_AT_NUMPY_IMPORT).split() == ["4"]


def test_a_timeout_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "12")
    assert run_python(_AT_NUMPY_IMPORT).split() == ["12"]


def test_set_once_and_reported(monkeypatch):
    from reconstruct.blas_threads import THREAD_TIMEOUT, idle_blas_threads_sleep

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    assert idle_blas_threads_sleep() == THREAD_TIMEOUT == os.environ["OPENBLAS_THREAD_TIMEOUT"]
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "30")
    assert idle_blas_threads_sleep() == "30"
