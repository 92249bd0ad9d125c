"""Multi-view 3DMM fitting (detect -> fit). The output contract is :mod:`.result`."""
