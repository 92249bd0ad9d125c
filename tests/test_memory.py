"""reconstruct/memory.py: a --jobs worker reuses freed memory for the next frame's arrays."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    np._core.multiarray._set_madvise_hugepage(False)  # 4 KiB pages: one fault per page touched, countable
    if sys.argv[1] == "keep":
        from reconstruct.memory import keep_freed_memory
        assert keep_freed_memory() and keep_freed_memory()  # set once, later calls say so too
    def frame():  # what a frame does: large arrays made, filled, freed
        a = np.ones((1080, 1920, 3), np.uint16)  # 12.4 MB
        b = (a * 3).astype(np.float32)  # 24.9 MB
        return int(b[::97, ::89].sum())
    frame()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        frame()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_frames_memory_is_reused_without_page_faults():
    """10 frames of 37 MB of arrays each: 4 KiB pages touched anew every frame by default (measured 121,199
    faults: 12,100 pages a frame), none once the memory is kept (measured 0; ceiling 1,000)."""
    default, kept = _faults("default"), _faults("keep")
    assert default > 10 * 5000, default
    assert kept < 1000, kept


def _worker_faults(_item) -> int:
    """In a --jobs worker: the page faults of 10 frames' arrays after one (the heap's high-water mark) was made."""
    import resource

    import numpy as np

    np._core.multiarray._set_madvise_hugepage(False)  # 4 KiB pages: one fault per page touched, countable

    def frame():
        a = np.ones((1080, 1920, 3), np.uint16)
        return int((a * 3).astype(np.float32)[::97, ::89].sum())

    frame()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        frame()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("fresh", [False, True], ids=["forked", "started"])
def test_every_jobs_worker_keeps_freed_memory(fresh):
    """Every worker of LocalExecutor's pools (forked and started alike; detect, age, render, composite, report)
    reuses a frame's freed large arrays: 121,199 faults over the 10 frames with glibc's default thresholds (the
    probe above), measured 0 in a worker; ceiling 1,000."""
    from reconstruct.executors.local import LocalExecutor

    ex = LocalExecutor(jobs=2)
    try:
        faults = ex.map(_worker_faults, [0, 1], fresh=fresh)
    finally:
        ex.close()
    assert max(faults) < 1000, faults


_CHUNK_PROBE = textwrap.dedent("""
    import resource
    import numpy as np
    np._core.multiarray._set_madvise_hugepage(False)  # 4 KiB pages: one fault per page touched, countable
    from reconstruct.memory import keep_freed_memory
    assert keep_freed_memory()
    def frame():  # a plate edit's worth of arrays alive at once (8 x 20 MB, each under the mmap threshold), freed
        arrays = [np.ones((20 << 20) // 4, np.float32) for _ in range(8)]
        return sum(float(a[::4096].sum()) for a in arrays)
    frame()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        frame()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_plate_edits_freed_memory_is_kept_whole():
    """160 MB of arrays alive at once, then freed (an age worker's plate edit frees 110-150 MB at the heap's top at
    the end of a chunk): the whole of it stays for the next frame. With 128 MiB kept (before age13) glibc gave it
    back after every frame and each frame faulted ~36,000 pages in again (measured 179,040 over the 5 frames); 0 now (ceiling 1,000)."""
    out = subprocess.run([sys.executable, "-c", _CHUNK_PROBE], capture_output=True, text=True, check=True)
    faults = int(out.stdout.split()[-1])
    assert faults < 1000, faults
