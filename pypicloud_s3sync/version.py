"""The package version, importable without the Pyramid plugin in ``__init__``."""

__version__ = "0.1.0"
