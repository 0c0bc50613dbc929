"""labeling.rendering: untrusted markdown becomes safe HTML; markdown and code still render.

Every XSS vector goes through both layers: ``render_markdown`` (what pages use) and
``sanitize_html`` alone (the allowlist, as if markdown had passed raw HTML through). The output
is parsed and checked structurally, not by substring, so an escaped ``&lt;script&gt;`` in text
is fine and a real ``<script>`` element is not.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from labeling.rendering import message_text, render_markdown, sanitize_html

FORBIDDEN_TAGS = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "form", "input",
    "button", "textarea", "select", "svg", "math", "img", "video", "audio", "source", "link",
    "meta", "base", "template", "details", "marquee",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "poster"}

XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<div hx-get="/admin/" hx-trigger="load">x</div>',
    '<span data-hx-post="/api/v1/x" hx-on:click="alert(1)">x</span>',
    '<iframe src="https://evil.example"></iframe>',
    "<style>body{display:none}</style>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    '<a href="&#106;avascript:alert(1)">entity</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;script:alert(1)">hex entity</a>',
    "[x](&#106;avascript:alert(1))",
    '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    '<form action="/admin/logout/" method="post"><button>go</button></form>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
    "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '<body onload="alert(1)">',
    '<p style="background:url(javascript:alert(1))" onclick="alert(1)">p</p>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<object data="javascript:alert(1)"></object>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<a href="vbscript:msgbox(1)">vb</a>',
    "<details open ontoggle=alert(1)>",
    '<input autofocus onfocus="alert(1)">',
    "<!--<img src=x onerror=alert(1)>-->",
    '<a href="/admin/" target="_blank">internal</a>',
    '<base href="https://evil.example/">',
]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.elements


def _assert_safe(html: str) -> None:
    for tag, attrs in _elements(html):
        assert tag not in FORBIDDEN_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (name, html)
            assert not name.startswith(("hx-", "data-")), (name, html)
            assert name not in {"style", "target", "id", "srcdoc"}, (name, html)
            if name in URL_ATTRIBUTES and value is not None:
                squashed = "".join(value.split()).lower()
                assert not squashed.startswith(("javascript:", "data:", "vbscript:")), html
        if tag == "a" and "href" in attrs:
            assert attrs.get("rel") == "noopener nofollow", html


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_markdown_output_is_safe(vector: str) -> None:
    _assert_safe(str(render_markdown(vector)))


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_sanitizer_alone_is_safe(vector: str) -> None:
    _assert_safe(sanitize_html(vector))


def test_there_are_enough_vectors() -> None:
    assert len(XSS_VECTORS) >= 15


def test_raw_html_in_markdown_is_shown_as_text() -> None:
    html = str(render_markdown("<script>alert(1)</script>"))
    assert "&lt;script&gt;" in html
    assert "<script" not in html


def test_script_and_style_content_is_dropped_by_the_sanitizer() -> None:
    assert sanitize_html("<script>alert(1)</script>ok") == "ok"
    assert sanitize_html("<style>p{}</style>ok") == "ok"


def test_links_keep_http_and_get_rel() -> None:
    html = str(render_markdown("[docs](https://example.org/a?b=1)"))
    assert html.strip() == (
        '<p><a href="https://example.org/a?b=1" rel="noopener nofollow">docs</a></p>'
    )


def test_javascript_markdown_link_is_not_a_link() -> None:
    html = str(render_markdown("[x](javascript:alert(1))"))
    assert "<a" not in html


def test_entity_encoded_javascript_href_is_dropped() -> None:
    html = sanitize_html('<a href="&#106;avascript:alert(1)">x</a>')
    assert "href" not in html


def test_fenced_code_becomes_pre_code_with_language() -> None:
    html = str(render_markdown("```python\nif a < b:\n    print('<b>')\n```"))
    assert html.startswith('<pre><code class="language-python">')
    assert "if a &lt; b:" in html
    assert "&lt;b&gt;" in html


def test_only_language_classes_survive() -> None:
    assert sanitize_html('<code class="language-rust">x</code>') == (
        '<code class="language-rust">x</code>'
    )
    assert sanitize_html('<code class="htmx-indicator">x</code>') == "<code>x</code>"
    assert sanitize_html('<p class="language-py">x</p>') == "<p>x</p>"


def test_markdown_basics_render() -> None:
    html = str(
        render_markdown(
            "# Title\n\n**bold** *em* `code` ~~gone~~\n\n- one\n- two\n\n1. a\n\n> quote\n\n"
            "| h | i |\n|---|---|\n| 1 | 2 |\n"
        )
    )
    for fragment in (
        "<h1>Title</h1>",
        "<strong>bold</strong>",
        "<em>em</em>",
        "<code>code</code>",
        "<s>gone</s>",
        "<li>one</li>",
        "<ol>",
        "<blockquote>",
        "<table>",
        "<td>1</td>",
    ):
        assert fragment in html, fragment


def test_images_are_not_loaded_but_alt_text_stays() -> None:
    html = str(render_markdown("![a cat](https://tracker.example/pixel.png)"))
    assert "<img" not in html
    assert "[image: a cat]" in html


def test_message_text_accepts_strings_and_parts() -> None:
    assert message_text("hi") == "hi"
    assert message_text([{"type": "text", "text": "a"}, {"type": "image_url"}, "b"]) == "a\n\nb"
    assert message_text(None) == ""
