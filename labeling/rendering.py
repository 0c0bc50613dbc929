"""Markdown for untrusted text (model responses, prompts, guidelines) rendered to safe HTML.

Two layers: markdown-it-py renders CommonMark with raw HTML *escaped* (``html: False``) and its
own link validation, then nh3 (ammonia) sanitizes the result against a small allowlist. Whatever
a model writes, no script, style, iframe, form, event handler, ``javascript:``/``data:`` URL or
``hx-*``/``data-*`` attribute reaches the page, and every link gets ``rel="noopener nofollow"``.
Images are not loaded (a model could use them as tracking pixels); their alt text is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "ol": {"start"}, "code": {"class"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener nofollow"
_LANGUAGE_CLASS = re.compile(r"^language-[A-Za-z0-9_+#.-]{1,40}$")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # Only the fence's language class survives on <code>: it labels the block, nothing more.
    if attribute == "class":
        return value if tag == "code" and _LANGUAGE_CLASS.match(value) else None
    return value


_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags={"script", "style", "iframe", "noscript", "template", "textarea", "svg"},
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes=URL_SCHEMES,
    link_rel=LINK_REL,
    strip_comments=True,
)


def _render_image_as_text(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    return f"[image: {alt}]" if alt else "[image]"


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])
_markdown.add_render_rule("image", _render_image_as_text)


def sanitize_html(html: str) -> str:
    """Any HTML reduced to the allowlist (the second layer; also usable on its own)."""
    return _cleaner.clean(html)


def render_markdown(text: str) -> SafeString:
    """Untrusted markdown as HTML that is safe to put in a page."""
    return mark_safe(sanitize_html(_markdown.render(text)))  # sanitized by nh3 just above


def message_text(content: Any) -> str:
    """A chat message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n\n".join(parts)
    return "" if content is None else str(content)
