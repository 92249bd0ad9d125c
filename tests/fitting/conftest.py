import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the private ICT helper next to this file


@pytest.fixture(autouse=True)
def _one_thread():
    # The CI box has 2 cores shared with other jobs; OpenMP spinning on 2 threads made small matmuls 100x slower.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ict_model():
    from ict import load_ict

    return load_ict()


@pytest.fixture(scope="session")
def face_region(ict_model):
    from ict import ict_face_region

    return ict_face_region()
