"""Users, their preferences, and the password era's refresh tokens.

The ``users`` table predates this project (see ``0001_legacy_baseline``). Its
foreign keys cascade in the database (``DB_CASCADE``), as they always have, so
rows written by the legacy application and by Django behave the same way.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.db.fields import FixedCharField

# The columns holding keyed hashes of tokens (never a token): the admin masks them,
# the schema check refuses anything else in them.
TOKEN_HASH_COLUMNS = ("azure_access_token_hash", "azure_refresh_token_hash", "github_access_token_hash")


class UserQuerySet(models.QuerySet):
    def linked_to_entra(self) -> UserQuerySet:
        return self.filter(azure_entra_id__isnull=False)

    def by_email(self, email: str) -> UserQuerySet:
        return self.annotate(email_lower=Lower("email")).filter(email_lower=email.lower())


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def create_user(self, email: str, **fields) -> User:
        user = self.model(email=self.normalize_email(email), **fields)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, **fields)


class User(PermissionsMixin, AbstractBaseUser):
    """A person who signs in with Microsoft Entra ID. There is no password."""

    # Removed from the abstract parent: nobody has a password any more.
    password = None

    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    is_active = models.BooleanField(default=True, db_default=True)
    is_superuser = models.BooleanField(default=False, db_default=False)
    is_staff = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    last_login = models.DateTimeField(null=True, blank=True, db_column="last_login_at")

    # Microsoft Entra ID. The token columns hold keyed hashes, never tokens.
    azure_entra_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    azure_tenant_id = models.CharField(max_length=64, null=True, blank=True)
    azure_access_token_hash = models.CharField(max_length=64, null=True, blank=True)
    azure_refresh_token_hash = models.CharField(max_length=64, null=True, blank=True)
    azure_token_expires_at = models.DateTimeField(null=True, blank=True)
    profile_picture_url = models.URLField(max_length=500, null=True, blank=True)
    organization = models.CharField(max_length=200, null=True, blank=True)
    department = models.CharField(max_length=200, null=True, blank=True)

    # GitHub.
    github_username = models.CharField(max_length=100, null=True, blank=True)
    github_access_token_hash = models.CharField(max_length=64, null=True, blank=True)
    github_connected_at = models.DateTimeField(null=True, blank=True)

    # The migration flags operators review in the admin.
    requires_entra_migration = models.BooleanField(default=False, db_default=False)
    entra_linked_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        indexes = [
            models.Index(fields=["azure_tenant_id", "azure_entra_id"], name="users_entra_tenant_idx"),
            models.Index(Lower("email"), name="users_email_lower_idx"),
            models.Index(
                fields=["id"],
                condition=models.Q(requires_entra_migration=True),
                name="users_pending_entra_idx",
            ),
            models.Index(fields=["last_login"], name="users_last_login_idx"),
        ]

    def __str__(self) -> str:
        return self.email

    # No password, so none of AbstractBaseUser's password methods apply.
    def set_password(self, raw_password: str | None) -> None:
        raise NotImplementedError("Users sign in with Microsoft Entra ID; there are no passwords.")

    def check_password(self, raw_password: str) -> bool:
        return False

    async def acheck_password(self, raw_password: str) -> bool:
        return False

    def set_unusable_password(self) -> None:
        pass

    def has_usable_password(self) -> bool:
        return False

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Sessions stay valid while the Entra link is the same; unlinking or
        # relinking an account ends every session it had.
        return salted_hmac(
            "accounts.User.get_session_auth_hash",
            f"{self.pk}:{self.azure_tenant_id}:{self.azure_entra_id}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @property
    def is_linked_to_entra(self) -> bool:
        return self.azure_entra_id is not None


class UserPreferences(models.Model):
    class Theme(models.TextChoices):
        SYSTEM = "system"
        LIGHT = "light"
        DARK = "dark"

    user = models.OneToOneField(User, on_delete=models.DB_CASCADE, related_name="preferences")
    theme = models.CharField(max_length=16, choices=Theme, default=Theme.SYSTEM, db_default=Theme.SYSTEM)
    language = models.CharField(max_length=16, default="en", db_default="en")
    email_notifications = models.BooleanField(default=True, db_default=True)
    in_app_notifications = models.BooleanField(default=True, db_default=True)
    notify_on_sync_failure = models.BooleanField(default=True, db_default=True)
    github_auto_sync = models.BooleanField(default=False, db_default=False)
    github_default_branch = models.CharField(max_length=255, default="main", db_default="main")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "user_preferences"
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class LegacyRefreshToken(models.Model):
    """A password-era refresh token (hashed). ``migrate_users_to_entra`` removes them."""

    user = models.ForeignKey(User, on_delete=models.DB_CASCADE, related_name="+")
    token_hash = FixedCharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "refresh_tokens"

    def __str__(self) -> str:
        return f"refresh token {self.pk} of {self.user_id}"


class EntraLinkAudit(models.Model):
    """One row each time a user is linked to an Entra account (or created from one).

    The audit outlives its user: ``user`` has no database constraint, so
    deleting the user leaves the row, with the user's id, the email that
    matched, the tenant id and the object id. ``user_id`` is always written;
    ``null=True`` tells Django the user may be gone (outer joins, ``None``).
    """

    class Event(models.TextChoices):
        LINKED = "linked"
        CREATED = "created"

    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="entra_link_audits"
    )
    event = models.CharField(max_length=16, choices=Event)
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    matched_email = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "entra_link_audits"

    def __str__(self) -> str:
        return f"{self.event} {self.user_id} to {self.tenant_id}/{self.object_id}"


class RefusedEntraLink(models.Model):
    """A sign-in that could not be linked to a user: nothing changed, an operator decides."""

    class Reason(models.TextChoices):
        AMBIGUOUS_EMAIL = "ambiguous_email", "several users have this email"
        LINKED_ELSEWHERE = "linked_elsewhere", "the user is linked to another Entra account"
        INACTIVE = "inactive", "the user is inactive"
        UNVERIFIED_EMAIL = "unverified_email", "the tenant does not own this email"
        NO_ACCOUNT = "no_account", "no user to link and just-in-time creation is off"
        NOT_FLAGGED = "not_flagged", "the user with this email is not awaiting Entra migration"

    reason = models.CharField(max_length=32, choices=Reason)
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    email = models.CharField(max_length=254, blank=True, default="")
    candidate_ids = models.JSONField(default=list, blank=True)
    resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "entra_refused_links"

    def __str__(self) -> str:
        return f"{self.reason}: {self.email or self.object_id}"


class EntraTokenCache(models.Model):
    """msal's token cache of one user (it holds a refresh token): Fernet-encrypted."""

    user = models.OneToOneField(User, on_delete=models.DB_CASCADE, related_name="entra_token_cache")
    ciphertext = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "entra_token_caches"

    def __str__(self) -> str:
        return f"token cache of {self.user_id}"


class ProfilePhoto(models.Model):
    """The user's Entra photo, served through the project (``profile_picture_url``)."""

    user = models.OneToOneField(User, on_delete=models.DB_CASCADE, related_name="profile_photo")
    content = models.BinaryField()
    content_type = models.CharField(max_length=100)
    etag = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "profile_photos"

    def __str__(self) -> str:
        return f"photo of {self.user_id}"
