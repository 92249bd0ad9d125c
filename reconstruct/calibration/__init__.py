"""Rig calibration: boards, detection, intrinsics, joint extrinsics, bundle adjustment, quality, import/export.

Import the submodules you need; this package's ``__init__`` stays free of heavy imports so that
``reconstruct.calibration.result`` (read by every later stage) loads fast.
"""
