from __future__ import annotations

from django.db import models


class FixedCharField(models.CharField):
    """``char(N)``: the legacy schema's type for fixed-length hex digests."""

    def db_type(self, connection) -> str:
        return f"char({self.max_length})"
