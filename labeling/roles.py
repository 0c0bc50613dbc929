"""Who may do what: annotators label, admins manage. Roles are Django groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labeling.models import Project

ANNOTATOR_GROUP = "annotator"
ADMIN_GROUP = "admin"


def is_admin(user: Any) -> bool:
    """Admins manage projects, rounds and exports. Cached on the user object per request."""
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, "_pairwise_is_admin", None)
    if cached is None:
        cached = bool(user.is_superuser or user.groups.filter(name=ADMIN_GROUP).exists())
        user._pairwise_is_admin = cached
    return cached


def can_label(user: Any, project: Project) -> bool:
    """Annotators label only in projects they are members of; admins label anywhere."""
    if is_admin(user):
        return True
    return bool(
        getattr(user, "is_authenticated", False) and project.annotators.filter(pk=user.pk).exists()
    )
