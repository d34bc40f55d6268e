"""A local stand-in for Microsoft Entra ID and Graph (development and tests only)."""

from devtools.local_entra.server import LocalEntra, LocalUser

__all__ = ["LocalEntra", "LocalUser"]
