"""HTML (and EDGAR-flavoured SGML/HTML) to readable plain text.

`html_to_text` keeps the block structure of the document: every block element (``<p>``,
``<div>``, headings, list items, ``<br>``) starts a new line, paragraphs are separated by a blank
line, and every table row becomes one line with its non-empty cells joined by ``" | "``. Inline
XBRL tags (``ix:nonFraction`` ...) are unwrapped, the hidden XBRL header (``ix:header``) and
elements styled ``display:none`` are dropped, ``&nbsp;`` becomes a plain space.

lxml's HTML parser does the parsing (it repairs broken markup the way browsers do); only the
tree-to-text walk is written here because no library flattens tables to one line per row.
"""

from __future__ import annotations

import functools
import re

import lxml.etree
import lxml.html

# Elements whose content never reaches the reader.
_DROP_TAGS = frozenset(
    {"script", "style", "head", "title", "meta", "link", "noscript", "ix:header", "ix:hidden"}
)
# Elements that start a new paragraph (blank line before and after).
_PARA_TAGS = frozenset(
    {
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "dl",
        "center",
        "section",
        "article",
        "header",
        "footer",
        "form",
        "address",
        "page",
        "body",
        "html",
    }
)
# Elements that start a new line (single newline).
_LINE_TAGS = frozenset({"li", "dt", "dd", "tr", "hr", "caption"})

_HIDDEN_RE = re.compile(r"display\s*:\s*none", re.I)
_WS_RE = re.compile(r"[ \t\r\f\v\u00a0\u2002\u2003\u2009\u200b]+")
_MANY_NL_RE = re.compile(r"\n\s*\n(\s*\n)+")
# Cells that belong to their neighbour in financial tables: "$" | "1,234" | ")" | "%".
_PREFIX_CELL_RE = re.compile(r"^[$€£(]+$")
_SUFFIX_CELL_RE = re.compile(r"^[)%]+\)?%?$")

PARA = "\n\n"


def _tag(el: lxml.etree._Element) -> str:
    """Lower-case tag name, '' for comments and processing instructions."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.lower()


def _hidden(el: lxml.etree._Element) -> bool:
    style = el.get("style")
    return bool(style and _HIDDEN_RE.search(style)) or el.get("hidden") is not None


def _src(text: str, pre: bool) -> str:
    """Source newlines are spaces for the reader, except inside <pre>."""
    return text if pre else text.replace("\r", " ").replace("\n", " ")


def _walk(root: lxml.etree._Element, out: list[str], pre: bool = False) -> None:
    """Append the text of `root` (without its tail) to `out`, with block breaks as newlines.

    Iterative (an explicit stack), because broken EDGAR HTML nests unclosed <font> tags
    thousands deep; only nested tables recurse.
    """
    # Stack entries: an element to open with its <pre> flag, or a string to emit as is.
    stack: list[tuple[lxml.etree._Element, bool] | str] = [(root, pre)]
    while stack:
        entry = stack.pop()
        if isinstance(entry, str):
            out.append(entry)
            continue
        el, pre = entry
        tag = _tag(el)
        pre = pre or tag in ("pre", "xmp", "plaintext")
        if tag in _DROP_TAGS or _hidden(el):
            continue
        if tag == "table":
            out.append(PARA)
            out.extend(_table_lines(el))
            out.append(PARA)
            continue
        if tag == "br":
            out.append("\n")
            continue
        block = PARA if tag in _PARA_TAGS else ("\n" if tag in _LINE_TAGS else "")
        if tag in ("td", "th"):
            out.append(" ")
        out.append(block)
        if el.text and tag:
            out.append(_src(el.text, pre))
        stack.append(block)
        for child in reversed(el):
            if child.tail:
                stack.append(_src(child.tail, pre))
            stack.append((child, pre))


def _inline_text(el: lxml.etree._Element) -> str:
    """The text of one table cell on a single line."""
    parts: list[str] = []
    if el.text:
        parts.append(el.text)
    for child in el:
        _walk(child, parts)
        if child.tail:
            parts.append(child.tail)
    return _WS_RE.sub(" ", " ".join("".join(parts).split("\n"))).strip()


def _merge_cells(cells: list[str]) -> list[str]:
    """Glue "$" / "(" cells to the next cell, ")" / "%" / ".1" cells to the previous one."""
    merged: list[str] = []
    carry = ""
    for cell in cells:
        if _PREFIX_CELL_RE.match(cell):
            carry += cell
            continue
        glue = _SUFFIX_CELL_RE.match(cell) or (
            # decimal-aligned columns: "10" | ".1" is exhibit 10.1
            cell.startswith(".") and cell[1:2].isdigit() and merged and merged[-1][-1:].isdigit()
        )
        if glue and merged and not carry:
            merged[-1] += cell
            continue
        merged.append(carry + cell)
        carry = ""
    if carry:
        merged.append(carry)
    return merged


def _rows(table: lxml.etree._Element):
    """Rows of `table` (not of tables nested in it)."""
    for el in table.iter():
        if _tag(el) != "tr":
            continue
        parent = el.getparent()
        while parent is not None and _tag(parent) != "table":
            parent = parent.getparent()
        if parent is table:
            yield el


def _table_lines(table: lxml.etree._Element) -> list[str]:
    """One line per non-empty row, cells joined by ' | '."""
    lines: list[str] = []
    for tr in _rows(table):
        if _hidden(tr):
            continue
        cells = [_inline_text(td) for td in tr if _tag(td) in ("td", "th") and not _hidden(td)]
        cells = _merge_cells([c for c in cells if c])
        if cells:
            lines.append(" | ".join(cells) + "\n")
    return lines


def normalize_text(text: str) -> str:
    """Collapse runs of spaces, strip lines, keep at most one blank line between paragraphs."""
    lines = [_WS_RE.sub(" ", line).strip() for line in text.split("\n")]
    joined = "\n".join(lines)
    return _MANY_NL_RE.sub("\n\n", joined).strip("\n")


def html_to_text(html: str | bytes) -> str:
    """Readable text of an HTML document or fragment; tables flattened to one line per row.

    Never raises on malformed markup: lxml repairs what it can. Returns "" for a document with
    no text at all.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    if not html.strip():
        return ""
    # An XML declaration in a str makes lxml refuse the input; EDGAR inline-XBRL files carry one.
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)
    try:
        # huge_tree: keep text nested deeper than libxml2's default limit of 256 levels.
        root = lxml.html.document_fromstring(html, parser=_parser())
    except (lxml.etree.ParserError, ValueError):
        return normalize_text(re.sub(r"<[^>]+>", " ", html))
    out: list[str] = []
    try:
        _walk(root, out)
        text = normalize_text("".join(out))
    except RecursionError:  # tables nested hundreds deep: plain text, one line per text node
        text = normalize_text("\n".join(root.itertext()))
    if not text:
        # Nesting beyond what even huge_tree keeps loses the text; never return nothing when
        # the markup has visible words.
        text = normalize_text(re.sub(r"<[^>]+>", " ", html))
    return text


@functools.lru_cache(maxsize=1)
def _parser() -> lxml.html.HTMLParser:
    return lxml.html.HTMLParser(huge_tree=True)
