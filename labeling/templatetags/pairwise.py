"""Template filters shared by every page: the viewer's role and rendered markdown."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from labeling import roles
from labeling.rendering import message_text, render_markdown

register = template.Library()


@register.filter
def is_admin(user: Any) -> bool:
    """``{% if user|is_admin %}``: the nav shows management links to admins only."""
    return roles.is_admin(user)


@register.filter
def markdown(content: Any) -> SafeString:
    """``{{ text|markdown }}``: untrusted markdown rendered and sanitized (labeling.rendering).

    Takes a string or a chat message's content (a string or a list of text parts).
    """
    return render_markdown(message_text(content))
