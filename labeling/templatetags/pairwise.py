"""Template filters shared by every page: the viewer's role and rendered markdown."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from labeling import roles

register = template.Library()


@register.filter
def is_admin(user: Any) -> bool:
    """``{% if user|is_admin %}``: the nav shows management links to admins only."""
    return roles.is_admin(user)


@register.filter
def markdown(text: str | None) -> SafeString:
    """``{{ text|markdown }}``: untrusted markdown rendered and sanitized (labeling.rendering)."""
    from labeling.rendering import render_markdown

    return render_markdown(text or "")
