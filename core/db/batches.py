"""Walking a large queryset a batch of primary keys at a time."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet


def pk_batches(queryset: QuerySet, size: int) -> Iterator[list]:
    """The primary keys of ``queryset`` in ascending batches of ``size``.

    Keyset pagination: each query starts after the previous batch's last key, so a job that
    settles or deletes what it walks never walks the same rows twice (a query that started
    from the table's first row again took minutes over a million settled sessions).
    """
    ordered = queryset.order_by("pk")
    page = ordered
    while pks := list(page.values_list("pk", flat=True)[:size]):
        yield pks
        page = ordered.filter(pk__gt=pks[-1])
