"""The admin's migration page (/admin/ops/migration/): the figures of migration_status and a chart, each figure
linking to the filtered user list. Added to the admin site's URLs, behind its login and staff check."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from ops.chart import migration_chart
from ops.selectors import migration_status

DAYS = 30


def migration_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("accounts.view_user"):
        raise PermissionDenied
    status = migration_status(days=DAYS)
    users = reverse("admin:accounts_user_changelist")
    refused = reverse("admin:accounts_refusedentralink_changelist")
    figures = [
        ("Users", status.total, users),
        ("Linked to Entra", status.linked, f"{users}?entra_link=linked"),
        ("Flagged, not signed in since", status.flagged, f"{users}?requires_entra_migration__exact=1"),
        ("Inactive", status.inactive, f"{users}?is_active__exact=0"),
        ("Conflicts to resolve", status.conflicts, f"{refused}?resolved__exact=0"),
    ]
    refusals = [
        (reason, count, f"{refused}?resolved__exact=0&reason__exact={reason}")
        for reason, count in status.refused_by_reason.items()
    ]
    chart = migration_chart(
        per_day=status.linked_per_day, to_go_now=status.flagged, today=timezone.now().date(), days=DAYS
    )
    context = {
        **admin.site.each_context(request),
        "title": "Entra migration",
        "status": status,
        "share": round(100 * status.linked / status.total, 1) if status.total else 0.0,
        "figures": figures,
        "refusals": refusals,
        "chart": chart,
        "days": DAYS,
    }
    return TemplateResponse(request, "ops/migration.html", context)


def _with_migration_page(get_urls):
    def get_urls_with_page():
        page = path("ops/migration/", admin.site.admin_view(migration_view), name="ops_migration")
        return [page, *get_urls()]

    return get_urls_with_page


admin.site.get_urls = _with_migration_page(admin.site.get_urls)
# The admin's home page lists the migration page above the apps.
admin.site.index_template = "ops/admin_index.html"
