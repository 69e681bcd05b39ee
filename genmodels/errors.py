"""The errors a user meets, at the bottom of the package so that every layer can raise them.

Each message starts with the config key or argument at fault; ``genmodels-train`` maps each to
its exit code (see the README's "Failures").
"""

from __future__ import annotations

__all__ = ["ConfigError", "DatasetNotFoundError"]


class ConfigError(ValueError):
    """A configuration value is impossible; the message starts with the full key."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says how to get them."""
