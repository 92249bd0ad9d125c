"""Built-in plugins. Each module is registered through the ``reconstruct`` entry-point group in pyproject.toml,
exactly like a third-party plugin, and can be disabled with ``--disable-plugin NAME``."""
