"""The admin where operators review the move to Microsoft Entra ID.

Token columns hold keyed hashes; even so, the admin never shows one whole nor
lets anyone edit one: they are left out of every form and shown as a prefix.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import (
    TOKEN_HASH_COLUMNS,
    EntraLinkAudit,
    LegacyRefreshToken,
    RefusedEntraLink,
    User,
    UserPreferences,
)
from accounts.services import set_entra_migration_flag

TOKEN_HASH_PREFIX = 6
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def mask_token_hash(value: str | None) -> str:
    """``3f9a2c…``: enough to tell two hashes apart, too little to be one."""
    return f"{value[:TOKEN_HASH_PREFIX]}…" if value else "—"


class EntraLinkFilter(admin.SimpleListFilter):
    title = "Entra link"
    parameter_name = "entra_link"

    def lookups(self, request, model_admin):
        return [("linked", "Linked"), ("not_linked", "Not linked")]

    def queryset(self, request, queryset):
        if self.value() == "linked":
            return queryset.linked_to_entra()
        if self.value() == "not_linked":
            return queryset.filter(azure_entra_id__isnull=True)
        return queryset


class UserPreferencesInline(admin.StackedInline):
    model = UserPreferences
    can_delete = False
    max_num = 1
    readonly_fields = ("created_at", "updated_at")


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Users, their Entra link and their migration flag.

    Users cannot be added here: an account is created by its first sign-in
    with Microsoft Entra ID, which is what ties it to an Entra object id.
    There is no password and no username, so Django's auth ``UserAdmin``
    (password forms, username search) does not apply.
    """

    list_display = (
        "email",
        "full_name",
        "is_active",
        "is_staff",
        "requires_entra_migration",
        "entra_link",
        "azure_tenant_id",
        "entra_linked_at",
        "last_login",
    )
    list_filter = (
        "requires_entra_migration",
        EntraLinkFilter,
        "azure_tenant_id",
        "is_active",
        "is_staff",
        "is_superuser",
    )
    search_fields = ("email", "full_name", "azure_entra_id")
    # Every column is on the users row: there is nothing to join.
    list_select_related = False
    ordering = ("email",)
    actions = ("mark_requires_entra_migration", "clear_requires_entra_migration")
    inlines = (UserPreferencesInline,)
    filter_horizontal = ("groups", "user_permissions")

    # The raw hashes are in no form, so a POST cannot set them either.
    exclude = TOKEN_HASH_COLUMNS
    readonly_fields = (
        "azure_entra_id",
        "azure_tenant_id",
        "entra_link",
        "azure_access_token",
        "azure_refresh_token",
        "azure_token_expires_at",
        "github_username",
        "github_access_token",
        "github_connected_at",
        "entra_linked_at",
        "last_login",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        ("Identity", {"fields": ("email", "full_name", "organization", "department", "profile_picture_url")}),
        (
            "Microsoft Entra ID",
            {
                "fields": (
                    "azure_entra_id",
                    "azure_tenant_id",
                    "entra_link",
                    "azure_access_token",
                    "azure_refresh_token",
                    "azure_token_expires_at",
                )
            },
        ),
        ("GitHub", {"fields": ("github_username", "github_access_token", "github_connected_at")}),
        ("Migration", {"fields": ("requires_entra_migration", "entra_linked_at")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # A new email on an unlinked superuser would let whoever owns it link to it.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        # change_user (which the migration flag needs) must not be a way to superuser:
        # Entra app roles decide staff and superuser status, and only a superuser may override them.
        if request.user.is_superuser:
            return self.readonly_fields
        return (*self.readonly_fields, *PRIVILEGE_FIELDS)

    @admin.display(
        description="Entra link",
        ordering=ExpressionWrapper(Q(azure_entra_id__isnull=False), output_field=BooleanField()),
    )
    def entra_link(self, user: User) -> str:
        return "linked" if user.is_linked_to_entra else "not linked"

    @admin.display(description="Azure access token hash")
    def azure_access_token(self, user: User) -> str:
        return mask_token_hash(user.azure_access_token_hash)

    @admin.display(description="Azure refresh token hash")
    def azure_refresh_token(self, user: User) -> str:
        return mask_token_hash(user.azure_refresh_token_hash)

    @admin.display(description="GitHub access token hash")
    def github_access_token(self, user: User) -> str:
        return mask_token_hash(user.github_access_token_hash)

    @admin.action(description="Mark as requiring Entra migration", permissions=["change"])
    def mark_requires_entra_migration(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_flag(request, queryset, True, "Marked {} as requiring Entra migration", "already did")

    @admin.action(description="Clear the Entra migration flag", permissions=["change"])
    def clear_requires_entra_migration(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_flag(request, queryset, False, "Cleared the Entra migration flag on {}", "did not have it")

    def _set_flag(self, request, queryset: QuerySet[User], required: bool, done: str, unchanged_note: str) -> None:
        selected = queryset.count()
        changed = set_entra_migration_flag(users=queryset, required=required)
        message = done.format(f"{changed} {model_ngettext(self.opts, changed)}")
        if unchanged := selected - changed:
            message += f"; {unchanged} {unchanged_note}"
        self.message_user(request, f"{message}.", messages.SUCCESS)


@admin.register(LegacyRefreshToken)
class LegacyRefreshTokenAdmin(admin.ModelAdmin):
    """Password-era refresh tokens, until ``migrate_users_to_entra`` removes them.

    Read-only: they are never added or edited here, only deleted.
    """

    list_display = ("id", "user", "token", "expires_at", "revoked_at", "created_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "expires_at")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    ordering = ("-created_at",)
    exclude = ("token_hash",)
    fields = ("user", "token", "expires_at", "revoked_at", "created_at")
    readonly_fields = fields

    @admin.display(description="Token hash")
    def token(self, refresh_token: LegacyRefreshToken) -> str:
        return mask_token_hash(refresh_token.token_hash)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LegacyRefreshToken | None = None) -> bool:
        return False


@admin.register(RefusedEntraLink)
class RefusedEntraLinkAdmin(admin.ModelAdmin):
    """Sign-ins that were refused rather than linked: what an operator must resolve."""

    list_display = ["created_at", "reason", "email", "tenant_id", "object_id", "candidate_ids", "resolved"]
    list_filter = ["reason", "resolved", "tenant_id", "created_at"]
    search_fields = ["email", "object_id", "tenant_id"]
    readonly_fields = ["created_at", "reason", "email", "tenant_id", "object_id", "candidate_ids"]
    list_select_related = False  # no relations
    date_hierarchy = "created_at"
    actions = ["mark_resolved"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Mark as resolved", permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(resolved=False).update(resolved=True)
        self.message_user(request, f"Marked {count} refused link(s) as resolved.", messages.SUCCESS)


@admin.register(EntraLinkAudit)
class EntraLinkAuditAdmin(admin.ModelAdmin):
    """The record of every Entra link: read-only, and never deleted, not even by a superuser.

    Rows outlive their user (``user`` has no database constraint), so the user
    column links to the account while it exists and names its id afterwards.
    """

    list_display = ["created_at", "event", "account", "matched_email", "tenant_id", "object_id"]
    list_filter = ["event", "tenant_id", "created_at"]
    search_fields = ["user__email", "matched_email", "object_id"]
    readonly_fields = ["created_at", "event", "account", "matched_email", "tenant_id", "object_id"]
    fields = readonly_fields
    # An outer join (user is nullable): the rows of deleted users stay listed.
    list_select_related = ["user"]

    @admin.display(description="User", ordering="user_id")
    def account(self, audit: EntraLinkAudit) -> str:
        try:
            user = audit.user  # None from the changelist's outer join
        except User.DoesNotExist:  # fetched on its own, on the change page
            user = None
        if user is None:
            return f"deleted user {audit.user_id}"
        return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: EntraLinkAudit | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: EntraLinkAudit | None = None) -> bool:
        return False
