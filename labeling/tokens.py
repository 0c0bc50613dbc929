"""API tokens managed by admins: create one for a user (its key is shown once), list them without
their keys, revoke one. The one write path of the Tokens page and ``/api/v1/tokens/``.

A user has at most one token (DRF's ``authtoken``); creating a second one is refused (revoke the
first). Also the admin group's Django-admin permissions (``admin_group_ensure``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.db.models import Q
from rest_framework.authtoken.models import Token

from labeling.errors import Conflict, LabelingError
from labeling.roles import ADMIN_GROUP, is_admin

# How much of a key a listing shows: enough to tell two apart, useless to authenticate.
KEY_PREFIX_CHARS = 6

# What the admin group may do in the Django admin: everything on the app's own data and on
# tokens; users read-only (changing a user there could grant superuser status).
ADMIN_APP_LABELS = ("labeling", "rlhf", "authtoken")
ADMIN_EXTRA_PERMISSIONS = (("auth", "view_user"),)


class NotAllowed(LabelingError):
    status = 403


class Missing(LabelingError):
    status = 404


@dataclass(frozen=True)
class TokenRow:
    user_id: int
    username: str
    is_admin: bool
    created: datetime
    key_prefix: str


def admin_group_ensure() -> Group:
    """The admin group, holding the Django-admin permissions the README promises admins."""
    group, _ = Group.objects.get_or_create(name=ADMIN_GROUP)
    extra = Q()
    for app_label, codename in ADMIN_EXTRA_PERMISSIONS:
        extra |= Q(content_type__app_label=app_label, codename=codename)
    group.permissions.add(
        *Permission.objects.filter(Q(content_type__app_label__in=ADMIN_APP_LABELS) | extra)
    )
    return group


def tokens_list() -> list[TokenRow]:
    """Every token, newest first, with the first characters of its key only."""
    tokens = Token.objects.select_related("user").order_by("-created", "user__username")
    admin_ids = set(
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name=ADMIN_GROUP))
        .values_list("pk", flat=True)
    )
    return [
        TokenRow(
            user_id=token.user_id,
            username=token.user.get_username(),
            is_admin=token.user_id in admin_ids,
            created=token.created,
            key_prefix=token.key[:KEY_PREFIX_CHARS],
        )
        for token in tokens
    ]


def users_without_token() -> list[Any]:
    return list(
        get_user_model()
        .objects.filter(is_active=True, auth_token__isnull=True)
        .order_by("username")
    )


def _check_admin(by: Any) -> None:
    if not is_admin(by):
        raise NotAllowed("only admins manage API tokens")


def _user(user_id: Any) -> Any:
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        raise LabelingError("user: give a user id", field="user") from None
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        raise Missing(f"user: no user with id {user_id}", field="user")
    return user


def token_create(*, by: Any, user_id: Any) -> Token:
    """A new token for the user; its ``key`` is the only time the full key is shown."""
    _check_admin(by)
    user = _user(user_id)
    if not user.is_active:
        raise LabelingError(f"user: {user.get_username()} is inactive", field="user")
    try:
        with transaction.atomic():
            return Token.objects.create(user=user)
    except IntegrityError:
        raise Conflict(
            f"{user.get_username()} already has a token: revoke it first", field="user"
        ) from None


def token_revoke(*, by: Any, user_id: Any) -> str:
    """Delete the user's token (its key stops working at once); returns the username."""
    _check_admin(by)
    user = _user(user_id)
    deleted, _ = Token.objects.filter(user=user).delete()
    if not deleted:
        raise Missing(f"{user.get_username()} has no token", field="user")
    return str(user.get_username())
