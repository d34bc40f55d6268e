"""The directory of the local Entra: its users, and a photo to give them."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field


@dataclass
class LocalUser:
    oid: str
    tid: str
    email: str | None
    name: str
    preferred_username: str | None = None  # defaults to email
    roles: list[str] = field(default_factory=list)
    xms_edov: bool | None = None  # included in tokens only when not None
    company_name: str | None = None
    department: str | None = None
    photo: bytes | None = None  # JPEG/PNG bytes served by Graph; None -> 404
    job_title: str | None = None
    account_enabled: bool = True  # False: the directory refuses its refresh tokens (AADSTS50057)

    def __post_init__(self) -> None:
        if self.preferred_username is None:
            self.preferred_username = self.email

    @property
    def user_principal_name(self) -> str:
        return self.preferred_username or self.email or f"{self.oid}@local.invalid"


def solid_png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    """A small single-colour PNG: a profile photo for local users."""
    row = b"\x00" + bytes(rgb) * size
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
