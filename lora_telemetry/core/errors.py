"""The error hierarchy shared by every layer.

Every boundary answers bad input with one of these (a specific, human-readable message),
never with a bare ``ValueError``/``IndexError`` traceback.
"""

from __future__ import annotations


class LoraTelemetryError(Exception):
    """Base class of every error this package raises on purpose."""


class MalformedFrameError(LoraTelemetryError):
    """Bytes that do not form a valid frame of the expected protocol."""


class CryptoError(LoraTelemetryError):
    """A key of the wrong size or format, or a failed integrity check."""


class ConfigError(LoraTelemetryError):
    """A parameter, configuration file or CLI argument that cannot be used."""
