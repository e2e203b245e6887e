"""Make pyvis's page self-contained, and check that it is.

pyvis 0.3.2 inlines vis-network with ``cdn_resources="in_line"``, but its
template still loads Bootstrap from a CDN (a ``<link>`` and a ``<script
src=...>``, only used for the look of its optional menus, which the workbench
does not turn on). At a venue without Wi-Fi those requests hang or fail, so
:func:`make_offline` removes every tag that would load something from the
network, and :func:`remote_references` finds any that is left.

What counts is what a browser would *load*: ``src``/``href``-like attributes,
CSS ``url(...)`` and ``@import``. Text that merely mentions an address (the
licence comments inside the inlined vis-network, an SVG namespace string) is
not a request and is left alone.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Attributes whose value a browser fetches (or navigates to, for <a href>;
# harmless but still counted, so that the page stays strictly local).
URL_ATTRIBUTES = {
    "src", "href", "srcset", "data", "poster", "action", "formaction", "background",
    "codebase", "cite", "longdesc", "manifest", "ping", "xlink:href",
}
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host, ws://, ...
CSS_REMOTE = re.compile(r"url\(\s*['\"]?\s*(?:[a-z][a-z0-9+.-]*:)?//|@import\b", re.IGNORECASE)

# A <link> or <script src> that points off the page, and pyvis's commented-out
# link to node_modules (dead, but it reads like a dependency).
REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*['\"]?\s*(?:[a-z][a-z0-9+.-]*:)?//[^>]*>", re.IGNORECASE)
REMOTE_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*['\"]?\s*(?:[a-z][a-z0-9+.-]*:)?//[^>]*>\s*</script\s*>", re.IGNORECASE
)
DEAD_COMMENT = re.compile(r"<!--\s*<link[^>]*node_modules.*?-->", re.IGNORECASE | re.DOTALL)
EMPTY_HEADING = re.compile(r"<center>\s*<h1>\s*</h1>\s*</center>", re.IGNORECASE)


class NotOffline(RuntimeError):
    """The page still refers to something on the network."""


def make_offline(html: str, *, head: str = "", body_start: str = "", body_end: str = "") -> str:
    """``html`` without network references, with ``head`` added to its
    ``<head>``, ``body_start`` at the top of its ``<body>`` and ``body_end`` at its end."""
    html = REMOTE_SCRIPT.sub("", html)
    html = REMOTE_LINK.sub("", html)
    html = DEAD_COMMENT.sub("", html)
    html = EMPTY_HEADING.sub("", html)  # pyvis prints its (empty) heading twice
    if head:
        html = html.replace("</head>", head + "\n</head>", 1)
    if body_start:
        html = re.sub(r"<body>", lambda m: m.group(0) + "\n" + body_start, html, count=1)
    if body_end:
        at = html.rindex("</body>")
        html = html[:at] + body_end + "\n" + html[at:]
    left = remote_references(html)
    if left:
        raise NotOffline("the drawing still loads from the network: " + "; ".join(left[:5]))
    return html


def remote_references(html: str) -> list[str]:
    """Every place where ``html`` would make a browser fetch from the network."""
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return finder.found


class _Finder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._check(tag, attrs)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self._check(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style and (match := CSS_REMOTE.search(data)):
            self.found.append(f"<style>: {data[match.start():match.start() + 80]!r}")

    def _check(self, tag, attrs):
        values = dict(attrs)
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "refresh" and "//" in (values.get("content") or ""):
            self.found.append(f"<meta http-equiv=refresh content={values['content']!r}>")
        for name, value in attrs:
            if value is None:
                continue
            if name in URL_ATTRIBUTES and REMOTE.match(value):
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name == "style" and CSS_REMOTE.search(value):
                self.found.append(f"<{tag} style={value!r}>")
