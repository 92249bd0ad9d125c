"""Built-in renderer backends (``register_renderers``): ``raycast``, open3d's Embree ray caster on the CPU;
``pytorch3d``, PyTorch3D's rasterizer, chosen by ``--renderer auto`` where a CUDA GPU is present."""

from __future__ import annotations

from reconstruct import hookimpl


@hookimpl
def register_renderers():
    from reconstruct.render.pytorch3d_backend import PyTorch3DRenderer
    from reconstruct.render.raycast import RaycastRenderer

    return [RaycastRenderer, PyTorch3DRenderer]
