"""What the Content-Security-Policy forbids in our HTML: inline scripts, styles, handlers."""

from __future__ import annotations

import re

TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)(\s[^>]*)?>", re.S)
ATTR = re.compile(r"""\s([a-zA-Z-:]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
DATA_TYPES = ("application/json", "application/ld+json", "text/template")


def inline_code(html: str) -> list[str]:
    """Each inline script, `<style>` element, `style=` attribute, `on*=` handler and
    `javascript:` URL in the page (a JSON data block is data, not code)."""
    found = []
    for m in TAG.finditer(html):
        tag, rest = m.group(1).lower(), m.group(2) or ""
        attrs = {a.group(1).lower(): a.group(2).strip("\"'") for a in ATTR.finditer(rest)}
        if tag == "script" and "src" not in attrs and attrs.get("type") not in DATA_TYPES:
            found.append("inline <script>: " + html[m.start() : m.start() + 80])
        if tag == "style":
            found.append("<style> element")
        for name, value in attrs.items():
            if name == "style":
                found.append(f"style attribute on <{tag}>: {value[:60]}")
            elif name.startswith("on"):
                found.append(f"{name} handler on <{tag}>")
            elif name in ("href", "src", "action") and value.lower().startswith("javascript:"):
                found.append(f"javascript: URL on <{tag}>")
    return found
