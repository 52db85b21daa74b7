"""Rewriting a message's HTML: open pixel, click links, unsubscribe link.

The rewrite is surgical: the HTML is scanned, not parsed and re-serialized,
and only the ``href`` values of tracked links change (plus the removal of the
``data-no-track``/``data-unsubscribe`` markers and the pixel added before
``</body>``). Everything else stays byte for byte, which matters for e-mail
HTML full of Outlook conditional comments and hand-tuned tables.

Links are looked for in ``<a>`` and ``<area>`` elements and in VML shapes
(``<v:roundrect href=...>``, Outlook's "bulletproof buttons") inside
``<!--[if mso]>`` conditional comments. Ordinary comments, ``<script>``,
``<style>``, ``<textarea>`` and ``<title>`` contents are left alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from beacon.email.urls import tracked_destination

__all__ = ["ClickURLFactory", "instrument_html", "pixel_tag"]

#: ``click_url(destination, link_index) -> str``: the tracked URL for one link.
ClickURLFactory = Callable[[str, int], str]

_SCANNER = re.compile(
    r"""
      <!--(?P<comment>.*?)(?:-->|\Z)
    | <(?P<raw>script|style|textarea|title)\b(?:[^>"']|"[^"]*"|'[^']*')*>.*?(?:</(?P=raw)\s*>|\Z)
    | </(?P<end>[A-Za-z][^\s/>]*)[^>]*>
    | <(?P<tag>[A-Za-z][^\s/>]*)(?P<attrs>(?:[^>"']|"[^"]*"|'[^']*')*)>
    """,
    re.DOTALL | re.IGNORECASE | re.VERBOSE,
)
_ATTRIBUTE = re.compile(
    r"""(?P<space>\s*)(?P<name>[^\s"'>/=][^\s"'>/=]*)
        (?:\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s>]+)))?""",
    re.VERBOSE,
)
_LINK_TAGS = frozenset({"a", "area"})
_NO_TRACK = "data-no-track"
_UNSUBSCRIBE = "data-unsubscribe"


def pixel_tag(pixel_url: str) -> str:
    """The invisible 1x1 ``<img>`` that reports an open."""
    return (
        f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
    )


class _Rewriter:
    """One pass over one message; holds the running link index."""

    def __init__(self, click_url: ClickURLFactory, unsubscribe_url: str) -> None:
        self.click_url = click_url
        self.unsubscribe_url = unsubscribe_url
        self.links = 0

    def rewrite(self, text: str) -> tuple[str, int | None]:
        """``text`` rewritten, and the offset (in the output) of its last ``</body>``."""
        out: list[str] = []
        done = 0
        body_end: int | None = None
        for match in _SCANNER.finditer(text):
            replacement: str | None = None
            if match.group("comment") is not None:
                inner = match.group("comment")
                if inner.lstrip().lower().startswith("[if"):
                    rewritten, _ = self.rewrite(inner)
                    if rewritten != inner:
                        start, end = match.span("comment")
                        before, after = text[match.start() : start], text[end : match.end()]
                        replacement = before + rewritten + after
            elif match.group("end") is not None:
                if match.group("end").lower() == "body":
                    out.append(text[done : match.start()])
                    done = match.start()
                    body_end = sum(map(len, out))
            elif match.group("tag") is not None:
                replacement = self._rewrite_tag(match)
            if replacement is not None:
                out.append(text[done : match.start()])
                out.append(replacement)
                done = match.end()
        out.append(text[done:])
        return "".join(out), body_end

    def _rewrite_tag(self, match: re.Match[str]) -> str | None:
        name = match.group("tag").lower()
        if name not in _LINK_TAGS and not name.startswith("v:"):
            return None
        attrs = match.group("attrs")
        found: dict[str, re.Match[str]] = {}
        for attribute in _ATTRIBUTE.finditer(attrs):
            found.setdefault(attribute.group("name").lower(), attribute)
        href = found.get("href")
        if href is None:
            return None
        value_group = next((g for g in ("dq", "sq", "uq") if href.group(g) is not None), None)
        # (span in attrs, new text) edits, applied right to left.
        edits: list[tuple[int, int, str]] = []
        new_href: str | None = None
        if _UNSUBSCRIBE in found:
            new_href = self.unsubscribe_url
        elif value_group is not None:
            destination = tracked_destination(html.unescape(href.group(value_group)))
            if destination is not None and _NO_TRACK not in found:
                new_href = self.click_url(destination, self.links)
                self.links += 1
        for marker in (_NO_TRACK, _UNSUBSCRIBE):
            if marker in found:
                edits.append((*found[marker].span(), ""))
        if new_href is not None:
            escaped = html.escape(new_href)
            if value_group is None:
                edits.append((href.end(), href.end(), f'="{escaped}"'))
            else:
                edits.append((*href.span(value_group), escaped))
        if not edits:
            return None
        for start, end, new in sorted(edits, reverse=True):
            attrs = attrs[:start] + new + attrs[end:]
        tag_start = match.start("attrs") - match.start()
        whole = match.group(0)
        return whole[:tag_start] + attrs + whole[match.end("attrs") - match.start() :]


def instrument_html(
    text: str, *, pixel_url: str, click_url: ClickURLFactory, unsubscribe_url: str
) -> str:
    """``text`` with tracked links, the unsubscribe link and the open pixel.

    - Every ``http``/``https`` link becomes ``click_url(destination, index)``,
      ``index`` counting tracked links from 0 in document order; links marked
      ``data-no-track`` keep their ``href`` (the marker is removed).
    - A link marked ``data-unsubscribe`` gets ``unsubscribe_url`` as its
      ``href`` (the marker is removed).
    - The pixel goes right before the last ``</body>``; without one, before
      ``</html>``, else at the very end.
    - ``javascript:``, ``data:`` and ``vbscript:`` links raise
      :class:`~beacon.email.exceptions.InstrumentationError`.
    """
    rewriter = _Rewriter(click_url, unsubscribe_url)
    rewritten, body_end = rewriter.rewrite(text)
    if body_end is None:
        html_end = rewritten.lower().rfind("</html")
        body_end = html_end if html_end >= 0 else len(rewritten)
    return rewritten[:body_end] + pixel_tag(pixel_url) + rewritten[body_end:]
