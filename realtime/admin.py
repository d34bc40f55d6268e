"""WebSocket sessions in the admin: who is connected, and who was."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import HttpRequest

from realtime.models import WebSocketSession


class LiveFilter(admin.SimpleListFilter):
    title = "connection"
    parameter_name = "connection"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("disconnected", "Disconnected")]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(disconnected_at__isnull=True)
        if self.value() == "disconnected":
            return queryset.filter(disconnected_at__isnull=False)
        return queryset


@admin.register(WebSocketSession)
class WebSocketSessionAdmin(admin.ModelAdmin):
    """Read-only: sessions are written by the WebSocket consumers alone."""

    list_display = (
        "connection_id",
        "user",
        "connection",
        "client_address",
        "connected_at",
        "last_heartbeat_at",
        "disconnected_at",
        "disconnect_reason",
        "server_id",
    )
    list_filter = (LiveFilter, "disconnect_reason", "connected_at")
    search_fields = ("user__email", "connection_id", "client_address", "server_id")
    list_select_related = ("user",)
    ordering = ("-connected_at",)
    readonly_fields = tuple(field.name for field in WebSocketSession._meta.fields)

    @admin.display(
        description="Connection",
        ordering=ExpressionWrapper(Q(disconnected_at__isnull=True), output_field=BooleanField()),
    )
    def connection(self, session: WebSocketSession) -> str:
        return "live" if session.disconnected_at is None else "disconnected"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebSocketSession | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebSocketSession | None = None) -> bool:
        return False
