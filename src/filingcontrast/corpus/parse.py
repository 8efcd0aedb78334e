"""Parse one 8-K filing, whatever its source, into items, sections, exhibits and boilerplate.

Inputs accepted: an EDGAR full submission (``.txt`` SGML with ``<DOCUMENT>`` blocks, main
document and exhibits), an EDGAR primary document (``.htm``, possibly wrapped in one SGML
``<DOCUMENT>``), a bare HTML file, or plain text (e.g. the simulated market's filings).

How items are found: the main document is turned into text with one block per line
(`html_to_text`); a line is an item *heading* when it starts with "Item"/"Items", then one or more
item numbers ("2.02", "2. 02", "5", "Items 2.02 and 9.01"), then nothing, a separator ("." ":"
"-") or words from the item's official title. A line that continues with prose ("Item 2.02 of
Form 8-K requires ...") is a mention; a line that ends with a page number is a table-of-contents
entry. When an item has several heading lines (table of contents without page numbers), the one
with the longest section wins. Modern numbering (1.01-9.01, from August 2004) and pre-2004
numbering (1-12) are both recognised; a filing with any modern heading ignores old-style ones.

Boilerplate spans (cover page, forward-looking-statement paragraphs, signature block) are char
offsets into `Parsed8K.text`, so later stages can drop them (`informative_sections`). An exhibit
pasted into the main document after the signature ("EXHIBIT 99.1" line, then its text) is split
off as an `Exhibit` with text, like an exhibit <DOCUMENT> (`_pasted_exhibits`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filingcontrast.corpus.html import html_to_text, normalize_text
from filingcontrast.errors import UserError

__all__ = [
    "ITEM_TITLES",
    "MODERN_ITEMS",
    "OLD_ITEMS",
    "Exhibit",
    "Parsed8K",
    "SgmlDocument",
    "Span",
    "decode_bytes",
    "document_text",
    "html_to_text",
    "parse_8k",
    "parse_8k_file",
    "sgml_documents",
]

# Official item titles. Modern items: Form 8-K as amended in 2004 (1.04 in 2010, 1.05 in 2023;
# 6.xx are the asset-backed-issuer items, 6.07-6.09 were never used). Old items: Form 8-K
# before 23 August 2004 (item 9 was "Sales of Equity Securities Pursuant to Regulation S" until
# 2000, items 10-12 were added in 2003).
MODERN_ITEMS: dict[str, str] = {
    "1.01": "Entry into a Material Definitive Agreement",
    "1.02": "Termination of a Material Definitive Agreement",
    "1.03": "Bankruptcy or Receivership",
    "1.04": "Mine Safety - Reporting of Shutdowns and Patterns of Violations",
    "1.05": "Material Cybersecurity Incidents",
    "2.01": "Completion of Acquisition or Disposition of Assets",
    "2.02": "Results of Operations and Financial Condition",
    "2.03": "Creation of a Direct Financial Obligation or an Obligation under an "
    "Off-Balance Sheet Arrangement of a Registrant",
    "2.04": "Triggering Events That Accelerate or Increase a Direct Financial Obligation or an "
    "Obligation under an Off-Balance Sheet Arrangement",
    "2.05": "Costs Associated with Exit or Disposal Activities",
    "2.06": "Material Impairments",
    "3.01": "Notice of Delisting or Failure to Satisfy a Continued Listing Rule or Standard; "
    "Transfer of Listing",
    "3.02": "Unregistered Sales of Equity Securities",
    "3.03": "Material Modification to Rights of Security Holders",
    "4.01": "Changes in Registrant's Certifying Accountant",
    "4.02": "Non-Reliance on Previously Issued Financial Statements or a Related Audit Report "
    "or Completed Interim Review",
    "5.01": "Changes in Control of Registrant",
    "5.02": "Departure of Directors or Certain Officers; Election of Directors; Appointment of "
    "Certain Officers; Compensatory Arrangements of Certain Officers",
    "5.03": "Amendments to Articles of Incorporation or Bylaws; Change in Fiscal Year",
    "5.04": "Temporary Suspension of Trading Under Registrant's Employee Benefit Plans",
    "5.05": "Amendments to the Registrant's Code of Ethics, or Waiver of a Provision of the "
    "Code of Ethics",
    "5.06": "Change in Shell Company Status",
    "5.07": "Submission of Matters to a Vote of Security Holders",
    "5.08": "Shareholder Director Nominations",
    "6.01": "ABS Informational and Computational Material",
    "6.02": "Change of Servicer or Trustee",
    "6.03": "Change in Credit Enhancement or Other External Support",
    "6.04": "Failure to Make a Required Distribution",
    "6.05": "Securities Act Updating Disclosure",
    "6.06": "Static Pool",
    "6.10": "Alternative Filings of Asset-Backed Issuers",
    "7.01": "Regulation FD Disclosure",
    "8.01": "Other Events",
    "9.01": "Financial Statements and Exhibits",
}
OLD_ITEMS: dict[str, str] = {
    "1": "Changes in Control of Registrant",
    "2": "Acquisition or Disposition of Assets",
    "3": "Bankruptcy or Receivership",
    "4": "Changes in Registrant's Certifying Accountant",
    "5": "Other Events and Regulation FD Disclosure",
    "6": "Resignations of Registrant's Directors",
    "7": "Financial Statements, Pro Forma Financial Information and Exhibits",
    "8": "Change in Fiscal Year",
    "9": "Regulation FD Disclosure",
    "10": "Amendments to the Registrant's Code of Ethics, or Waiver of a Provision of the Code "
    "of Ethics",
    "11": "Temporary Suspension of Trading Under Registrant's Employee Benefit Plans",
    "12": "Results of Operations and Financial Condition",
}
ITEM_TITLES: dict[str, str] = {**MODERN_ITEMS, **OLD_ITEMS}
# Other titles that filers used for the same item number (old forms changed over the years).
_ALT_TITLES: dict[str, tuple[str, ...]] = {
    "5": ("Other Events",),
    "7": ("Financial Statements and Exhibits",),
    "9": ("Sales of Equity Securities Pursuant to Regulation S",),
}

_STOP = frozenset(
    "a an and the of or to in on for under with that by its as any other certain".split()
)


def _title_words(title: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z]+", title.lower()) if w not in _STOP)


_TITLE_WORDS: dict[str, tuple[frozenset[str], ...]] = {
    code: tuple(_title_words(t) for t in (title, *_ALT_TITLES.get(code, ())))
    for code, title in ITEM_TITLES.items()
}


@dataclass
class Exhibit:
    """One exhibit: `type` like "EX-99.1"; `text` is "" when only the exhibit list names it."""

    type: str
    description: str
    text: str = ""


@dataclass
class Span:
    """Boilerplate region `text[start:end]`; kind is "cover", "forward_looking" or "signature"."""

    kind: str
    start: int
    end: int


@dataclass
class Parsed8K:
    """A parsed 8-K. `sections[item]` is the item's text (heading line included)."""

    form: str
    company: str
    items: list[str]
    sections: dict[str, str]
    exhibits: list[Exhibit]
    boilerplate: list[Span]
    text: str
    filename: str = ""
    warnings: list[str] = field(default_factory=list)
    # item -> (start, end) offsets of its section in `text`.
    section_spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        d = asdict(self)
        d["section_spans"] = {k: list(v) for k, v in self.section_spans.items()}
        return d

    def informative_sections(self) -> dict[str, str]:
        """Each item's section with the boilerplate spans cut out."""
        out: dict[str, str] = {}
        for item, (start, end) in self.section_spans.items():
            out[item] = _cut_spans(self.text, start, end, self.boilerplate)
        return out

    def summary(self) -> str:
        """Human-readable overview: items with titles and lengths, exhibits, boilerplate."""
        lines = [f"{self.filename or '<input>'}: form {self.form}, company {self.company or '?'}"]
        lines.append(f"items ({len(self.items)}):")
        for item in self.items:
            title = ITEM_TITLES.get(item, "?")
            lines.append(f"  {item:>5}  {title[:70]:<70}  {len(self.sections[item]):>7} chars")
        lines.append(f"exhibits ({len(self.exhibits)}):")
        for ex in self.exhibits:
            body = f"{len(ex.text)} chars" if ex.text else "listed only"
            lines.append(f"  {ex.type:<10} {ex.description[:60]:<60}  {body}")
        lines.append(f"boilerplate ({len(self.boilerplate)} spans):")
        for sp in self.boilerplate:
            lines.append(f"  {sp.kind:<16} [{sp.start}:{sp.end}]  {sp.end - sp.start} chars")
        lines.append(f"text: {len(self.text)} chars")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _cut_spans(text: str, start: int, end: int, spans: list[Span]) -> str:
    """text[start:end] without the parts covered by `spans`."""
    pieces: list[str] = []
    pos = start
    for sp in sorted(spans, key=lambda s: s.start):
        if sp.end <= pos or sp.start >= end:
            continue
        if sp.start > pos:
            pieces.append(text[pos : sp.start])
        pos = max(pos, sp.end)
    if pos < end:
        pieces.append(text[pos:end])
    return normalize_text("\n".join(p.strip("\n") for p in pieces))


# --------------------------------------------------------------------------------------------
# Reading and SGML


@dataclass
class SgmlDocument:
    """One <DOCUMENT> of an SGML submission (or the whole input when there is no SGML)."""

    type: str
    description: str
    body: str
    filename: str = ""


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_bytes(raw: bytes) -> str:
    """A filing's bytes as text: UTF-16 with a byte-order mark, else UTF-8, else cp1252 (old
    EDGAR filings), else latin-1. The ingesters store what the parser reads."""
    if raw.startswith(_UTF16_BOMS):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for enc in ("utf-8", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


_DOC_RE = re.compile(r"<DOCUMENT>(.*?)(?:</DOCUMENT>|\Z)", re.S | re.I)
_TAG_LINE_RE = {
    name: re.compile(rf"<{name}>[ \t]*([^\n<]*)", re.I)
    for name in ("TYPE", "DESCRIPTION", "FILENAME")
}
_TEXT_RE = re.compile(r"<TEXT>(.*?)(?:</TEXT>|\Z)", re.S | re.I)


def sgml_documents(raw: str) -> list[SgmlDocument]:
    """The <DOCUMENT>s of an EDGAR SGML submission in order: type (upper case), description,
    filename and the <TEXT> body (the whole block when it has no <TEXT>)."""
    docs: list[SgmlDocument] = []
    for m in _DOC_RE.finditer(raw):
        block = m.group(1)
        head = block[:2000]

        def tag(name: str, head: str = head) -> str:
            found = _TAG_LINE_RE[name].search(head)
            return found.group(1).strip() if found else ""

        text = _TEXT_RE.search(block)
        docs.append(
            SgmlDocument(
                type=tag("TYPE").upper(),
                description=tag("DESCRIPTION"),
                body=(text.group(1) if text else block),
                filename=tag("FILENAME"),
            )
        )
    return docs


_XBRL_WRAPPER_RE = re.compile(r"^\s*<XBRL>|</XBRL>\s*$")  # inline-XBRL documents are wrapped
_HTML_RE = re.compile(r"<(html|body|div|p|font|br|span|td)\b[^>]*>", re.I)
# SGML markup of old plain-text submissions: <PAGE>, <TABLE>, <S>, <C>, <CAPTION>, <FN> ...
_SGML_TAG_RE = re.compile(r"</?(page|table|caption|s|c|fn|f\d+)>", re.I)


# Page furniture repeated on every printed page: "2", "-2-", "Page 2", "Table of Contents".
_PAGE_LINE_RE = re.compile(
    r"^[ \t]*(?:-?[ \t]*\d{1,3}[ \t]*-?|page \d{1,3}|table of contents)[ \t]*$", re.I | re.M
)


def document_text(body: str) -> str:
    """Readable text of one document body, HTML or plain, without page numbers: what the parser
    reads and what the store keeps."""
    body = _XBRL_WRAPPER_RE.sub("", body)
    if _HTML_RE.search(body[:20000]) or _HTML_RE.search(body):
        text = html_to_text(body)
    else:
        text = _PLAIN_TABLE_RE.sub(_flatten_plain_table, body.expandtabs(8))
        text = _SGML_TAG_RE.sub("", text)
    return normalize_text(_PAGE_LINE_RE.sub("", text))


# <TABLE>...</TABLE> in plain-text submissions: columns aligned with runs of spaces.
_PLAIN_TABLE_RE = re.compile(r"<TABLE>(.*?)</TABLE>", re.S | re.I)


def _flatten_plain_table(m: re.Match[str]) -> str:
    """A preformatted table as one line per row, columns (2+ spaces apart) joined by ' | '."""
    rows = []
    for line in m.group(1).split("\n"):
        line = _SGML_TAG_RE.sub("", line).strip()
        if line and not re.fullmatch(r"[-=_\s]+", line):
            rows.append(" | ".join(re.split(r"\s{2,}", line)))
        elif not line:
            rows.append("")
    return "\n" + "\n".join(rows) + "\n"


# --------------------------------------------------------------------------------------------
# Form and company


# Cover pages spell the hyphen in many ways: ASCII, non-breaking (U+2011), en and em dashes.
_DASH = r"[-\u2010\u2011\u2012\u2013\u2014\u2212]"
_FORM_8K_RE = re.compile(rf"\bFORM\s+8\s*{_DASH}\s*K(\s*/\s*A)?\b", re.I)
_OTHER_FORM_RE = re.compile(
    rf"\bFORM\s+(10{_DASH}K\w*|10{_DASH}Q\w*|20{_DASH}F|40{_DASH}F|6{_DASH}K|S{_DASH}\d|F{_DASH}\d"
    r"|DEF\s*14A|SC\s*13[DG]|4|3|5)\b",
    re.I,
)
_HEADER_FORM_RE = re.compile(r"CONFORMED SUBMISSION TYPE:\s*(\S+)", re.I)
_HEADER_COMPANY_RE = re.compile(r"COMPANY CONFORMED NAME:\s*([^\n]+)", re.I)
_EXACT_NAME_RE = re.compile(r"\(?\s*exact name of (the )?registrant", re.I)


def _is_8k(form: str) -> bool:
    return form.upper().replace(" ", "").startswith("8-K")


def _cover_company(text: str) -> str:
    """The registrant's name: the line just above '(Exact name of registrant ...)'."""
    m = _EXACT_NAME_RE.search(text[:20000])
    if not m:
        return ""
    before = text[: m.start()].rstrip(" |(\n")
    line = before.rsplit("\n", 1)[-1].strip(" |")
    return line if 0 < len(line) <= 150 else ""


# --------------------------------------------------------------------------------------------
# Item headings

# "Item 2.02", "ITEMS 2.02 AND 9.01", "Item 2. 02", "Item 5.", "Item 7(c)", "Item 9.01:".
_HEAD_START_RE = re.compile(r"^[\s|*•\-–—]*items?(?![a-z])(?:\s*no\.)?[\s.:|]*", re.I)
_CODE_RE = re.compile(r"(\d{1,2})(?:\s*\.\s*(\d{2})(?!\d))?(?!\d|\.\d)")
_JOIN_RE = re.compile(r"\s*(?:,|&|and|/|;)?\s*(?:items?\b)?\s*", re.I)
_TOC_END_RE = re.compile(r"(?:\s|\|)\d{1,3}\s*$")
_SEP_RE = re.compile(r"^\s*[.:\-–—|)]")


@dataclass
class _Heading:
    start: int  # offset of the heading line in the main text
    end: int  # offset of the end of the heading line
    codes: list[str]
    toc: bool


def _parse_codes(rest: str) -> tuple[list[str], str]:
    """Item codes at the start of `rest` and the remainder of the line after them."""
    codes: list[str] = []
    pos = 0
    while True:
        m = _CODE_RE.match(rest, pos)
        if not m:
            break
        major, minor = m.group(1), m.group(2)
        codes.append(f"{int(major)}.{minor}" if minor else str(int(major)))
        pos = m.end()
        sub = re.match(r"\s*\([a-z0-9]{1,3}\)", rest[pos:])  # "5.02(b)", "7(c)"
        if sub:
            pos += sub.end()
        j = _JOIN_RE.match(rest, pos)
        if j and j.end() > pos and _CODE_RE.match(rest, j.end()):
            pos = j.end()
            continue
        break
    return codes, rest[pos:]


_MAX_TITLE_LEN = 80


def _title_case(words_text: str) -> bool:
    """Are most longer words capitalised, as in a title ("Dividend Declaration")?"""
    words = [w for w in re.findall(r"[A-Za-z]+", words_text) if len(w) > 3]
    return bool(words) and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _looks_like_title(codes: list[str], remainder: str, continues: bool = False) -> bool:
    """Does the text after the item number read as a heading rather than as prose?

    `continues`: the line continues the previous line's sentence (hard-wrapped prose such as
    "... referred to in\nItem 2. The registrant will file ..."); then only an official title
    or a bare number counts.
    """
    after = remainder.replace("|", " ").strip()
    bare = after.strip(" .:-–—)").strip()
    if not bare:
        return True
    words = set(re.findall(r"[a-z]+", bare.lower()[:120]))
    for code in codes:
        for title in _TITLE_WORDS.get(code, ()):
            if title and len(words & title) >= min(2, len(title)):
                return True
    if continues:
        return False
    if bare[:1].isupper() and _SEP_RE.match(remainder):
        return True  # "Item 8.01 - Dividend Declaration", "Item 8.01. On May 1, we ..."
    if len(bare) <= _MAX_TITLE_LEN and _title_case(bare):
        return True  # "Item 2.09 Unofficial Matter": a title, not a sentence
    letters = re.sub(r"[^A-Za-z]", "", bare[:60])
    return len(letters) >= 4 and letters.isupper()  # "ITEM 5 OTHER EVENTS"


_MORE_ITEMS_RE = re.compile(r"(?:\band|&|;|,)\s+items?\s*(\d{1,2}\s*\.\s*\d{2}\b)", re.I)

# A line ending like this closes its sentence (or is a heading/table row of its own).
_SENTENCE_END = (".", ":", ";", "?", "!", ")", '"', "”", "’")
_MIN_PROSE_LINE = 40


def _find_headings(text: str) -> list[_Heading]:
    heads: list[_Heading] = []
    pos = 0
    prev = ""
    for line in text.split("\n"):
        start, pos = pos, pos + len(line) + 1
        # wrapped prose lines are long; short ones ("Section 2 - ...") are headings themselves
        continues = len(prev) >= _MIN_PROSE_LINE and not prev.endswith(_SENTENCE_END)
        prev = line.rstrip()
        m = _HEAD_START_RE.match(line)
        if not m:
            continue
        codes, remainder = _parse_codes(line[m.end() :])
        if not codes or not _looks_like_title(codes, remainder, continues):
            continue
        # "Item 7.01 Regulation FD Disclosure and Item 8.01 Other Events": one heading, two items.
        codes += [c for more in _MORE_ITEMS_RE.findall(remainder) for c in _parse_codes(more)[0]]
        # A table-of-contents entry: a short line whose last word is a page number.
        toc = bool(_TOC_END_RE.search(line)) and len(remainder.strip()) > 3 and len(line) < 200
        heads.append(_Heading(start, start + len(line), codes, toc))
    return heads


# "Section 2 - Financial Information": the Form's group heading printed before the next item.
_GROUP_HEADING_RE = re.compile(r"^[ \t]*section[ \t]+\d{1,2}\b[^\n]{0,80}$", re.I)


def _trim_section_end(text: str, head_end: int, end: int) -> int:
    """Move `end` back over trailing blank lines and "Section N - ..." group headings."""
    while True:
        body = text[head_end:end].rstrip()
        end = head_end + len(body)
        cut = body.rfind("\n")
        if cut == -1 or not _GROUP_HEADING_RE.match(body[cut + 1 :]):
            return end
        end = head_end + cut


# Between two table-of-contents lines there is no prose, at most dots, "Page" or a number.
_TOC_FILLER_RE = re.compile(r"[^A-Za-z]*(?:page[^A-Za-z]*)?", re.I)


def _drop_toc_lines(text: str, heads: list[_Heading], limit: int) -> list[_Heading]:
    """`heads` without table-of-contents lines. A line ending in a number is a TOC entry only
    when another heading names the same items or no text follows it before the next heading;
    otherwise it is the item's heading with a number at the end of its title ("... for the
    Quarter Ended March 31", "... Amendment No. 2")."""
    heads = [h for h in heads if h.start < limit]
    named = {c for h in heads if not h.toc for c in h.codes}
    kept = []
    for i, h in enumerate(heads):
        nxt = heads[i + 1].start if i + 1 < len(heads) else limit
        if h.toc and (set(h.codes) <= named or _TOC_FILLER_RE.fullmatch(text[h.end : nxt])):
            continue
        kept.append(h)
    return kept


def _choose_headings(text: str, heads: list[_Heading], limit: int) -> list[_Heading]:
    """Real headings: drop TOC lines and old-style numbers in modern filings; one per item."""
    heads = _drop_toc_lines(text, heads, limit)
    if any("." in c for h in heads for c in h.codes):
        heads = [h for h in heads if any("." in c for c in h.codes)]
    if not heads:
        return []
    ends = [h.start for h in heads[1:]] + [limit]
    best: dict[str, tuple[int, int]] = {}  # code -> (section length, heading index)
    for i, (h, end) in enumerate(zip(heads, ends, strict=True)):
        for code in h.codes:
            length = end - h.end
            if code not in best or length > best[code][0]:
                best[code] = (length, i)
    keep = sorted({i for _, i in best.values()})
    return [heads[i] for i in keep]


# --------------------------------------------------------------------------------------------
# Boilerplate

_SIG_RE = re.compile(
    r"^[ \t]*(signatures?|signature page)[ \t]*:?[ \t]*$|^[ \t]*pursuant to the requirements of the "
    r"securities exchange act of 1934,? (as amended,? )?the registrant has duly caused",
    re.I | re.M,
)
_EXHIBIT_INDEX_RE = re.compile(
    r"^[ \t]*(exhibit index|index to exhibits|exhibit list)[ \t]*:?[ \t]*$", re.I | re.M
)
_FLS_START_RE = re.compile(
    r"forward[- ]looking statements?|safe harbou?r|private securities litigation reform act|"
    r"cautionary (note|statement|language)",
    re.I,
)
_FLS_CONT_RE = re.compile(
    r"forward[- ]looking|risks?\b|uncertaint|actual results|undertakes? no|no obligation|"
    r"could cause|factors|assumptions|expectations|disclaims?|10-K|10-Q",
    re.I,
)
_COVER_MARK_RE = re.compile(
    r"pre-commencement communications|former name or former address|exact name of registrant|"
    r"commission file number|telephone number, including area code|emerging growth company",
    re.I,
)


_MAX_FLS_PARA = 4000


def _paragraphs(text: str, base: int = 0) -> list[tuple[int, int]]:
    """(start, end) of blank-line-separated paragraphs."""
    out: list[tuple[int, int]] = []
    for m in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", text):
        body = m.group()
        if body.strip():
            lead = len(body) - len(body.lstrip())
            out.append((base + m.start() + lead, base + m.end()))
    return out


def _forward_looking_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    paras = _paragraphs(text)
    i = 0
    while i < len(paras):
        s, e = paras[i]
        # A very long "paragraph" is body text that merely mentions forward-looking statements.
        if e - s > _MAX_FLS_PARA or not _FLS_START_RE.search(text[s:e]):
            i += 1
            continue
        j = i + 1
        while (
            j < len(paras)
            and paras[j][1] - paras[j][0] <= _MAX_FLS_PARA
            and _FLS_CONT_RE.search(text[paras[j][0] : paras[j][1]])
        ):
            j += 1
        if spans and spans[-1].end >= s - 2:
            spans[-1].end = paras[j - 1][1]
        else:
            spans.append(Span("forward_looking", s, paras[j - 1][1]))
        i = j
    return spans


def _signature_span(text: str, after: int, main_end: int) -> Span | None:
    m = _SIG_RE.search(text, after, main_end)
    if not m:
        return None
    idx = _EXHIBIT_INDEX_RE.search(text, m.end(), main_end)
    return Span("signature", m.start(), idx.start() if idx else main_end)


# An exhibit pasted into the main document after the signature block (some filers, e.g. Horizon
# Financial 2006-2008, put the press release there instead of in its own <DOCUMENT>): a line
# holding only the exhibit number ("EXHIBIT 99.1", "Exhibit 99", "EX-99.1"), then the exhibit.
_PASTED_HEAD_RE = re.compile(
    r"^[ \t|*]*(?:exhibit|ex\.?)[ \t]*-?[ \t]*(?:no\.?[ \t]*)?(\d{1,3}(?:\.\d{1,3})?[a-z]?)"
    r"[ \t.:|*]*$",
    re.I | re.M,
)
# A pasted exhibit has at least this much text: shorter ones are exhibit list entries
# ("Exhibit 99.1" / "Press release dated ...") or cover sheets of an exhibit filed separately.
_MIN_PASTED_CHARS = 400
_MIN_PASTED_LINES = 3


def _exhibit_order(exhibit_type: str) -> tuple[int, ...]:
    """ "EX-99.1" -> (99, 1), "EX-10.14a" -> (10, 14): the order exhibits are numbered in."""
    return tuple(int(part) for part in re.findall(r"\d+", exhibit_type))


def _pasted_exhibits(
    text: str, sig: Span | None, heads: list[_Heading]
) -> tuple[int, int, list[Exhibit]]:
    """Exhibits pasted after the signature block: (start, end, exhibits) where text[start:end] is
    the pasted region (from the first exhibit heading with substantial text to the next exhibit
    index or the end), each exhibit's text without its heading line; (0, 0, []) when none.

    Only bare heading lines after the signature count, and only from the first one followed by
    at least `_MIN_PASTED_CHARS` chars on `_MIN_PASTED_LINES` lines; nothing is split when an
    item heading comes later (the layout is then not "8-K, signature, exhibits")."""
    if sig is None:
        return 0, 0, []
    marks = [
        (m.start(), m.end(), f"EX-{m.group(1).upper()}")
        for m in _PASTED_HEAD_RE.finditer(text, sig.start)
        if _exhibit_order(m.group(1))[0] <= 110  # Regulation S-K numbers stop there
    ]
    # Exhibits follow in increasing number: a repeated heading of the same exhibit (a page
    # header) or a lower number ("Exhibit 1" inside a pasted release) continues the current one.
    kept: list[tuple[int, int, str]] = []
    for mk in marks:
        if not kept or _exhibit_order(mk[2]) > _exhibit_order(kept[-1][2]):
            kept.append(mk)
    marks = kept
    if not marks:
        return 0, 0, []
    idx = _EXHIBIT_INDEX_RE.search(text, marks[0][0])
    region_end = idx.start() if idx else len(text)  # an exhibit index after them stays
    marks = [mk for mk in marks if mk[0] < region_end]
    pieces: list[tuple[int, str, str]] = []  # (heading start, type, body)
    for i, (start, end, typ) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else region_end
        pieces.append((start, typ, text[end:stop].strip()))
    first = next(
        (
            i
            for i, (_, _, body) in enumerate(pieces)
            if len(body) >= _MIN_PASTED_CHARS
            and sum(1 for ln in body.split("\n") if ln.strip()) >= _MIN_PASTED_LINES
        ),
        None,
    )
    if first is None or (heads and heads[-1].start >= pieces[first][0]):
        return 0, 0, []
    exhibits = [Exhibit(typ, "", body) for _, typ, body in pieces[first:] if body]
    return pieces[first][0], region_end, exhibits


def _cover_span(text: str, first_heading: int | None, main_end: int) -> Span | None:
    if first_heading is not None:
        return Span("cover", 0, first_heading) if first_heading > 0 else None
    ends = [m.end() for m in _COVER_MARK_RE.finditer(text, 0, min(main_end, 8000))]
    if not ends:
        return None
    eol = text.find("\n", ends[-1])
    return Span("cover", 0, eol if eol != -1 else ends[-1])


# --------------------------------------------------------------------------------------------
# Exhibits listed in the main document

_EX_ROW_RE = re.compile(
    r"^\s*(?:exhibit\s*(?:no\.?|number)?\s*)?(\d{1,3}(?:\.\d{1,3})?[a-z]?)\s*(?:\||[-–—:]|\s)\s*"
    r"(\S.{2,})$",
    re.I,
)
_EX_NUM_ONLY_RE = re.compile(r"^\s*(?:exhibit\s*)?(\d{1,3}\.\d{1,3}[a-z]?)\s*$", re.I)
# A line that opens with a form name ("8-K is required to be filed", wrapped prose) is not an
# exhibit row numbered 8.
_FORM_NAME_RE = re.compile(r"^\s*\d{1,2}\s*[-–—]\s*[KQ]\b", re.I)


def _listed_exhibits(block: str) -> list[Exhibit]:
    """Exhibits named in an exhibit list: rows like "99.1 | Press release dated ..."."""
    found: dict[str, Exhibit] = {}
    lines = [ln for ln in block.split("\n") if ln.strip()]
    for i, line in enumerate(lines):
        if _FORM_NAME_RE.match(line):
            continue
        m = _EX_ROW_RE.match(line)
        num = desc = None
        if m:
            num, desc = m.group(1), m.group(2)
        else:
            n = _EX_NUM_ONLY_RE.match(line)
            if n and i + 1 < len(lines):
                num, desc = n.group(1), lines[i + 1]
        if not num or not desc or not re.search(r"[A-Za-z]{3}", desc):
            continue
        if float(re.sub(r"[a-z]", "", num.lower()).split(".")[0] or 0) > 110:
            continue
        if re.match(r"^\s*(\d{1,2}\.\d{2}|[a-z]\))", desc):  # a sub-heading, not an exhibit
            continue
        typ = f"EX-{num.upper()}"
        desc = re.sub(r"\s*\|\s*", " ", desc).strip()
        found.setdefault(typ, Exhibit(typ, desc[:300]))
    return list(found.values())


# --------------------------------------------------------------------------------------------
# Entry points


def is_binary(raw: bytes) -> bool:
    """NUL bytes near the start (and no UTF-16 byte-order mark): not a text document."""
    return b"\x00" in raw[:4096] and not raw.startswith(_UTF16_BOMS)


NO_8K_MARKS = "not an 8-K: no 'FORM 8-K' cover page and no 'Item' headings"
"""Why a text with neither an 8-K cover nor item headings is refused (no other form named in it
either): a caller told the items by the user (a manifest) may still take it as an 8-K."""


def _fail(filename: str, what: str) -> UserError:
    return UserError(f"{filename or '<input>'}: {what}")


def parse_8k(raw: str | bytes, filename: str = "") -> Parsed8K:
    """Parse an 8-K (SGML submission, HTML or plain text). UserError on empty / non-8-K input."""
    if isinstance(raw, bytes):
        if is_binary(raw):
            raise _fail(filename, "binary file, not an 8-K text/HTML document")
        raw = decode_bytes(raw)
    raw = raw.lstrip("\ufeff")
    if not raw.strip():
        raise _fail(filename, "empty document")
    warnings: list[str] = []
    docs = sgml_documents(raw) if re.search(r"<DOCUMENT>", raw[:200000], re.I) else []
    header_form = _HEADER_FORM_RE.search(raw[:5000])
    header_company = _HEADER_COMPANY_RE.search(raw[:5000])
    if docs:
        main_doc = next((d for d in docs if _is_8k(d.type)), docs[0])
        form = (header_form.group(1) if header_form else main_doc.type).upper()
        # XBRL (EX-101.*) is data, not text: `ingest edgar` leaves it out of the store too.
        exhibit_docs = [
            d
            for d in docs
            if d is not main_doc and d.type.startswith("EX-") and not d.type.startswith("EX-101")
        ]
    else:
        main_doc, form, exhibit_docs = SgmlDocument("", "", raw), "", []
    main_text = document_text(main_doc.body)
    if not main_text.strip():
        raise _fail(filename, "no readable text in the document (empty or malformed markup)")
    if not form:
        form = _form_from_cover(main_text, filename, warnings)
    if not _is_8k(form):
        raise _fail(filename, f"form {form} is not an 8-K (expected 8-K or 8-K/A)")

    heads = _choose_headings(main_text, _find_headings(main_text), len(main_text))
    sig = _signature_span(main_text, heads[0].end if heads else 0, len(main_text))
    cut, cut_end, pasted = _pasted_exhibits(main_text, sig, heads)
    if pasted:  # the pasted exhibits leave the main document, as if they had their <DOCUMENT>s
        rest = main_text[cut_end:].strip("\n")
        main_text = main_text[:cut].rstrip() + (f"\n\n{rest}" if rest else "")
        sig = _signature_span(main_text, heads[0].end if heads else 0, len(main_text))
    late = next((h for h in heads if sig and h.start > sig.start), None)
    if sig and late:
        # An item heading after the signature block (some filers put 9.01 there): the
        # signature ends at it, and the items from it on run to the exhibit index or the end.
        sig = Span("signature", sig.start, late.start)
    section_limit = sig.start if sig else len(main_text)
    idx = _EXHIBIT_INDEX_RE.search(main_text, heads[-1].end if heads else 0)
    late_limit = idx.start() if idx else len(main_text)
    section_limit = min(section_limit, late_limit)

    items: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    ends = [h.start for h in heads[1:]] + [late_limit]
    for h, end in zip(heads, ends[: len(heads)], strict=True):
        end = max(min(end, section_limit), h.end) if h.start < section_limit else end
        for code in h.codes:
            if code not in ITEM_TITLES:
                warnings.append(f"unknown item number {code} at offset {h.start}")
                continue
            if code not in spans:
                items.append(code)
                spans[code] = (h.start, _trim_section_end(main_text, h.end, end))
    if not items:
        warnings.append("no item headings found")
    items.sort(key=_item_key)

    exhibits = _exhibits(exhibit_docs, main_text, spans, section_limit, pasted)
    text = main_text
    for ex in exhibits:
        if ex.text:
            text += f"\n\n[{ex.type}] {ex.description}".rstrip() + "\n\n" + ex.text
    boilerplate: list[Span] = []
    cover = _cover_span(main_text, heads[0].start if heads else None, len(main_text))
    boilerplate += [cover] if cover else []
    boilerplate += [sig] if sig else []
    boilerplate += _forward_looking_spans(text)
    boilerplate.sort(key=lambda s: (s.start, s.end))

    company = header_company.group(1).strip() if header_company else _cover_company(main_text)
    return Parsed8K(
        form=form,
        company=company,
        items=items,
        sections={code: text[s:e].strip() for code, (s, e) in spans.items()},
        exhibits=exhibits,
        boilerplate=boilerplate,
        text=text,
        filename=filename,
        warnings=warnings,
        section_spans=spans,
    )


def _form_from_cover(text: str, filename: str, warnings: list[str]) -> str:
    """Form type from the cover page of a document without SGML header."""
    head = text[:6000]
    m = _FORM_8K_RE.search(head)
    other = _OTHER_FORM_RE.search(head)
    # The cover names its own form first; a 10-K may mention "Form 8-K" further down.
    if other and (not m or other.start() < m.start()):
        return re.sub(_DASH, "-", re.sub(r"\s+", " ", other.group(1))).upper()
    if m:
        return "8-K/A" if m.group(1) else "8-K"
    if _find_headings(text):
        warnings.append("no 'FORM 8-K' on the cover page; assumed 8-K from its item headings")
        return "8-K"
    raise _fail(filename, NO_8K_MARKS)


def _exhibits(
    docs: list[SgmlDocument],
    main_text: str,
    spans: dict[str, tuple[int, int]],
    limit: int,
    pasted: list[Exhibit] | None = None,
) -> list[Exhibit]:
    """Exhibit documents of an SGML submission, then exhibits pasted after the signature (named
    by the exhibit list where it has them), then the rest of the main document's exhibit list."""
    out = [
        Exhibit(d.type, d.description or _first_line(t), t)
        for d in docs
        if (t := document_text(d.body))
    ]
    n_docs = len(out)
    out += pasted or []
    have = {e.type for e in out}
    # The exhibit list lives in item 9.01 (old item 7) and/or an "Exhibit Index" after signatures.
    blocks = [main_text[s:e] for code, (s, e) in spans.items() if code in ("9.01", "7")]
    idx = _EXHIBIT_INDEX_RE.search(main_text)
    if idx:
        blocks.append(main_text[idx.end() :])
    listed = [e for b in blocks for e in _listed_exhibits(b)]
    described = {e.type: e.description for e in reversed(listed)}
    for ex in out[n_docs:]:
        ex.description = described.get(ex.type) or _first_line(ex.text)
    for ex in listed:
        if ex.type not in have:
            have.add(ex.type)
            out.append(ex)
    return out


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:200]


def parse_8k_file(path: Path | str) -> Parsed8K:
    """Read and parse one 8-K file; UserError naming the file when unreadable or not an 8-K."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read file: {e.strerror or e}") from None
    return parse_8k(raw, filename=str(path))


# --------------------------------------------------------------------------------------------
# Measurement against a reference set (edgar-crawler's item sections, /work/shared/data/edgar-8k)


def _token_set(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _jaccard(a: str, b: str) -> float:
    sa, sb = _token_set(a), _token_set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def measure_reference(data_dir: Path | str) -> dict[str, Any]:
    """Parse every filing listed in DATA_DIR/index.jsonl and compare with its reference.

    Returns item-set exact-match accuracy, mean token-set Jaccard of section texts (over items
    both sides have), parse time, and the list of misses.
    """
    import time

    from filingcontrast.runtime import iter_jsonl

    data_dir = Path(data_dir)
    rows = [row for _, row in iter_jsonl(data_dir / "index.jsonl")]
    misses: list[dict[str, Any]] = []
    jaccards: list[float] = []
    t0 = time.perf_counter()
    for row in rows:
        parsed = parse_8k_file(data_dir / "filings" / row["filename"])
        ref = sorted(row["items"], key=_item_key)
        got = sorted(parsed.items, key=_item_key)
        if ref != got:
            misses.append(
                {
                    "filename": row["filename"],
                    "reference": ref,
                    "parsed": got,
                    "warnings": parsed.warnings,
                }
            )
        for item in set(ref) & set(got):
            jaccards.append(_jaccard(row["item_text"][item], parsed.sections[item]))
    seconds = time.perf_counter() - t0
    n = len(rows)
    return {
        "n_filings": n,
        "n_match": n - len(misses),
        "item_set_accuracy": (n - len(misses)) / n if n else 0.0,
        "mean_section_jaccard": sum(jaccards) / len(jaccards) if jaccards else 0.0,
        "n_sections_compared": len(jaccards),
        "seconds": seconds,
        "filings_per_s": n / seconds if seconds else 0.0,
        "misses": misses,
    }


def _item_key(code: str) -> tuple[int, int]:
    major, _, minor = code.partition(".")
    return int(major), int(minor or 0)
