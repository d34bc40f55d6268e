"""The naive way, for comparison: a per-row ORM loop doing the data step's work.

    DATABASE_URL=… python bench/naive_loop.py LIMIT

Prints {"users": n, "seconds": s} as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from accounts.models import LegacyRefreshToken, User, UserPreferences


def main(limit: int) -> None:
    started = time.perf_counter()
    done = 0
    for user in User.objects.order_by("id")[:limit].iterator(chunk_size=2000):
        UserPreferences.objects.get_or_create(user=user)
        if user.azure_entra_id is None and not user.requires_entra_migration:
            user.requires_entra_migration = True
            user.save(update_fields=["requires_entra_migration"])
        LegacyRefreshToken.objects.filter(user=user).delete()
        done += 1
    print(json.dumps({"users": done, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
