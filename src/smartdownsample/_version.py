"""The package version (single source: pyproject reads it from here)."""

__version__ = "2.1.0.dev0"
