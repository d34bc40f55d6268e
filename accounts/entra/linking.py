"""Who signs in: the user linked to (tid, oid), or the one user it is safe to link.

Once linked, email never matters again. Linking by email happens at most once
per user, only for a user flagged as requiring Entra migration, and only when
the token's tenant owns the address: its domain is listed for that tenant, or
Entra marks the domain verified (``xms_edov``). An address asserted by any
other tenant is never trusted (the "nOAuth" takeover).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.entra.conf import EntraConfig, entra_config
from accounts.models import EntraLinkAudit, RefusedEntraLink, User, UserPreferences
from core import metrics

logger = logging.getLogger("accounts.entra.linking")
Reason = RefusedEntraLink.Reason


class SignInRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def claimed_email(claims: dict) -> str:
    return (claims.get("email") or claims.get("preferred_username") or "").strip()


def tenant_owns_email(*, claims: dict, email: str, config: EntraConfig) -> bool:
    # xms_edov vouches for the `email` claim only, never for preferred_username.
    if claims.get("xms_edov") is True and email == (claims.get("email") or "").strip():
        return True
    domain = email.rpartition("@")[2].lower()
    return bool(domain) and domain in config.tenant_domains.get(claims["tid"], [])


def _refuse(*, reason: str, claims: dict, email: str, candidates: list[int], message: str) -> SignInRefused:
    RefusedEntraLink.objects.create(
        reason=reason, tenant_id=claims["tid"], object_id=claims["oid"], email=email, candidate_ids=candidates
    )
    logger.warning("Entra sign-in refused (%s) for tenant %s object %s", reason, claims["tid"], claims["oid"])
    return SignInRefused(reason, message)


def apply_roles(*, user: User, claims: dict, config: EntraConfig) -> None:
    """Entra app roles decide staff and superuser status, at every sign-in and renewal.

    Only the roles of an admin tenant (the home tenant unless ENTRA_ADMIN_TENANTS says
    otherwise) count: every tenant assigns this app's roles in its own copy of the app.
    """
    granted = set(claims.get("roles") or [])
    if granted and claims["tid"] not in config.admin_tenants:
        privileged = granted & (config.superuser_roles | config.staff_roles)
        if privileged:
            logger.warning(
                "ignored roles %s from tenant %s (not an admin tenant) for user %s",
                sorted(privileged),
                claims["tid"],
                user.pk,
            )
        granted = set()
    user.is_superuser = bool(granted & config.superuser_roles)
    user.is_staff = user.is_superuser or bool(granted & config.staff_roles)


def resolve_sign_in(*, claims: dict, config: EntraConfig | None = None) -> User:
    """The user these validated ID-token claims sign in, linking or creating one if safe.

    Raises ``SignInRefused`` (recorded for the admin, nothing else changed).
    """
    config = config or entra_config()
    tid, oid = claims["tid"], claims["oid"].lower()
    email = claimed_email(claims)
    try:
        try:
            return _resolve(claims=claims, tid=tid, oid=oid, email=email, config=config)
        except IntegrityError:
            # A concurrent first sign-in of the same identity created the user first
            # (its INSERT made ours wait, then fail): now it is the linked user.
            return _resolve(claims=claims, tid=tid, oid=oid, email=email, config=config)
    except _Refusal as refusal:
        raise _refuse(
            reason=refusal.reason, claims=claims, email=email, candidates=refusal.candidates, message=refusal.message
        ) from None


def _signed_in(outcome: str) -> None:
    """Counted and logged once the sign-in's transaction committed (a retried one counts once)."""
    metrics.sign_in(outcome)
    logger.info("Entra sign-in: %s", outcome, extra={"outcome": outcome})


def _resolve(*, claims: dict, tid: str, oid: str, email: str, config: EntraConfig) -> User:
    with transaction.atomic():
        user = _find_or_link(claims=claims, tid=tid, oid=oid, email=email, config=config)
        apply_roles(user=user, claims=claims, config=config)
        user.save(update_fields=["is_staff", "is_superuser", "updated_at"])
        return user


class _Refusal(Exception):
    def __init__(self, reason: str, message: str, candidates: list[int] | None = None) -> None:
        self.reason, self.message, self.candidates = reason, message, candidates or []


def _find_or_link(*, claims: dict, tid: str, oid: str, email: str, config: EntraConfig) -> User:
    linked = User.objects.select_for_update().filter(azure_entra_id=oid).first()
    if linked is not None:
        if linked.azure_tenant_id != tid:
            raise _Refusal(Reason.LINKED_ELSEWHERE, "This account is linked to another directory.", [linked.pk])
        if not linked.is_active:
            raise _Refusal(Reason.INACTIVE, "Your account is inactive. Ask an administrator.", [linked.pk])
        transaction.on_commit(lambda: _signed_in("returning"))
        return linked

    matches = list(User.objects.select_for_update().by_email(email).order_by("pk")) if email else []
    ids = [u.pk for u in matches]
    if len(matches) > 1:
        raise _Refusal(
            Reason.AMBIGUOUS_EMAIL,
            "Several accounts use this email address; an administrator must resolve it before you can sign in.",
            ids,
        )
    if matches:
        user = matches[0]
        if (user.azure_entra_id, user.azure_tenant_id) == (oid, tid):
            # Linked by a concurrent first sign-in while we waited for its row lock.
            if not user.is_active:
                raise _Refusal(Reason.INACTIVE, "Your account is inactive. Ask an administrator.", ids)
            transaction.on_commit(lambda: _signed_in("returning"))
            return user
        if user.azure_entra_id is not None:
            raise _Refusal(Reason.LINKED_ELSEWHERE, "The account with this email is linked to another identity.", ids)
        if not user.is_active:
            raise _Refusal(Reason.INACTIVE, "Your account is inactive. Ask an administrator.", ids)
        if not user.requires_entra_migration:
            raise _Refusal(Reason.NOT_FLAGGED, "The account with this email is not awaiting Entra sign-in.", ids)
        if not tenant_owns_email(claims=claims, email=email, config=config):
            raise _Refusal(Reason.UNVERIFIED_EMAIL, "Your directory is not known to own this email address.", ids)
        user.azure_entra_id = oid
        user.azure_tenant_id = tid
        user.requires_entra_migration = False
        user.entra_linked_at = timezone.now()
        user.save(
            update_fields=[
                "azure_entra_id",
                "azure_tenant_id",
                "requires_entra_migration",
                "entra_linked_at",
                "updated_at",
            ]
        )
        UserPreferences.objects.get_or_create(user=user)
        EntraLinkAudit.objects.create(
            user=user, event=EntraLinkAudit.Event.LINKED, tenant_id=tid, object_id=oid, matched_email=email
        )
        transaction.on_commit(lambda: _signed_in("linked"))
        return user

    if not config.jit_create:
        raise _Refusal(Reason.NO_ACCOUNT, "There is no account for you here. Ask an administrator for access.")
    if not email or not tenant_owns_email(claims=claims, email=email, config=config):
        raise _Refusal(Reason.UNVERIFIED_EMAIL, "Your directory is not known to own this email address.")
    user = User.objects.create(
        email=email,
        full_name=claims.get("name") or "",
        azure_entra_id=oid,
        azure_tenant_id=tid,
        entra_linked_at=timezone.now(),
    )
    UserPreferences.objects.create(user=user)
    EntraLinkAudit.objects.create(
        user=user, event=EntraLinkAudit.Event.CREATED, tenant_id=tid, object_id=oid, matched_email=email
    )
    transaction.on_commit(lambda: _signed_in("created"))
    return user
