"""``--device`` resolution: ``auto`` asks torch only where a GPU driver exists (torch costs 1.3-1.7 s to import
in the driver of every ``reconstruct run``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconstruct import device
from reconstruct.errors import DeviceError


def test_auto_without_a_gpu_driver_does_not_import_torch(repo_root):
    # before (main d8d2c4e): resolve_device("auto") imported torch whatever the machine -> "True" printed
    code = ("import sys; import reconstruct.device as d; d.gpu_driver_present = lambda: False; "
            "print(d.resolve_device('auto'), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["cpu", "False"]


def test_cuda_without_a_gpu_driver_is_a_device_error(monkeypatch):
    monkeypatch.setattr(device, "gpu_driver_present", lambda: False)
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        device.resolve_device("cuda")
    assert device.resolve_device("cpu") == "cpu"


def test_driver_probe_reads_libcuda_and_kfd(monkeypatch):
    def no_lib(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device.ctypes, "CDLL", no_lib)
    monkeypatch.setattr(device.os.path, "exists", lambda p: False)
    assert device.gpu_driver_present() is False
    monkeypatch.setattr(device.os.path, "exists", lambda p: p == "/dev/kfd")  # ROCm: torch is asked
    assert device.gpu_driver_present() is True
    monkeypatch.setattr(device.os.path, "exists", lambda p: False)
    monkeypatch.setattr(device.ctypes, "CDLL", lambda name: object())  # the NVIDIA driver is there
    assert device.gpu_driver_present() is True


def test_auto_agrees_with_torch():
    torch = pytest.importorskip("torch")
    assert device.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


DRIVER = """
import argparse, sys
import reconstruct.device as d
d.gpu_driver_present = lambda: False  # as on a machine without a GPU driver, wherever the test runs
from reconstruct.commands.run import run
from tests.test_engine import _host
args = argparse.Namespace(session=sys.argv[1], method=None, device="auto", jobs=1, from_stage=None, only_stage=None,
                          executor="local", address=None, option=[])
run(args, _host())
print("torch-imported", "torch" in sys.modules)
"""


def test_run_driver_does_not_import_torch_for_stages_that_do_not_use_it(tmp_path, repo_root):
    # `reconstruct run`'s own path (device, plugins, options, session, cache keys, executor) with the test stages,
    # which use no torch. Before (main d8d2c4e): "torch-imported True" (resolve_device imported it, 1.3-1.7 s)
    from tests.test_engine import make_session

    s = make_session(tmp_path / "s", repo_root)
    for _ in range(2):  # a run that computes the stages, then one where all are up to date
        r = subprocess.run([sys.executable, "-c", DRIVER, str(s)], cwd=repo_root, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split()[-2:] == ["torch-imported", "False"]
