"""Filing digests: one 8-K rendered compactly for a prompt, within a token budget.

A digest is a short header (form, items with titles, day of week and time of acceptance in New
York) followed by the most informative sentences of each item section and of the press-release
exhibit (EX-99.1), in their original order. Boilerplate (cover page, forward-looking statements,
signatures, the 9.01 exhibit list) is dropped using `corpus.parse.parse_8k`'s sections and spans,
plus a few phrase rules for what a parser cannot see (safe-harbor sentences inside a press release).

Selection is greedy on a per-sentence score (numbers, guidance and surprise words, first sentences
of each item and of the press release), counted with the real tokenizer: all sentences of all
filings are tokenized in one batch (`filing_digests`), so building thousands of digests takes
seconds. Company names and tickers are replaced by "the Company" / "[TICKER]" by default.

With `pairs.key_facts`, a `Key facts:` line after the header states what signals.py extracted
(EPS vs consensus with the surprise, guidance, offerings, departures, ...; "none extracted"
otherwise): the same facts the answer's analysis cites, stated once where a small model reading
a short digest cannot miss them.

`render_instruction(digest_a, digest_b)` wraps two digests in the seed's question; the
parenthetical after each filing (its items' short event types) is read back from the digest
header, so `swapped_instruction` needs nothing but the two digests.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from filingcontrast.errors import UserError

NY = ZoneInfo("America/New_York")
ANON_COMPANY = "the Company"
ANON_TICKER = "[TICKER]"

# Short event type per item code for the question's parenthetical (official titles are long).
ITEM_LABELS: dict[str, str] = {
    "1.01": "material agreement",
    "1.02": "agreement terminated",
    "1.03": "bankruptcy",
    "1.04": "mine safety",
    "1.05": "cybersecurity incident",
    "2.01": "acquisition or disposal",
    "2.02": "earnings",
    "2.03": "new debt",
    "2.04": "debt acceleration",
    "2.05": "restructuring costs",
    "2.06": "impairment",
    "3.01": "listing notice",
    "3.02": "unregistered equity sale",
    "3.03": "holder rights modified",
    "4.01": "auditor change",
    "4.02": "non-reliance on financials",
    "5.01": "change in control",
    "5.02": "officer or director change",
    "5.03": "charter or bylaw amendment",
    "5.04": "benefit plan blackout",
    "5.05": "code of ethics change",
    "5.06": "shell status change",
    "5.07": "shareholder vote",
    "5.08": "director nominations",
    "6.01": "ABS information",
    "7.01": "Reg FD disclosure",
    "8.01": "other events",
    "9.01": "exhibits",
}
# Items that only list exhibits: 9.01, and 7 under the pre-2004 numbering ("Financial
# Statements, Pro Forma Financial Information and Exhibits"; modern codes all have a dot).
EXHIBIT_ITEMS = frozenset({"9.01", "7"})

# Sentences that carry no information about the event (boilerplate a parser may leave behind).
_BOILERPLATE = re.compile(
    r"forward[- ]looking statement|safe harbor|private securities litigation reform act"
    r"|pursuant to the requirements of the securities exchange act|check the appropriate box"
    r"|indicate by check mark|emerging growth company|commission file number"
    r"|i\.r\.s\. employer|irs employer|exact name of registrant|cover page interactive data"
    r"|hereunto duly authorized|signature|shall not be deemed|deemed to be .?furnished"
    r"|incorporated by reference|incorporation language|substitute for,? or superior to"
    r"|undertakes no obligation|^\s*not applicable\.?\s*$|^\s*exhibit\s+\d+(?:\.\d+)?\s*$",
    re.IGNORECASE,
)
# Boilerplate only when the sentence has no number ("Non-GAAP EPS was $1.20" stays).
_LOW_VALUE = re.compile(
    r"non-gaap (?:financial )?(?:measures?|results|information)|attached (?:hereto )?as exhibit"
    r"|furnished (?:herewith|as exhibit|pursuant)|incorporated herein|hereby incorporated"
    r"|is attached hereto|filed herewith",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"\$\s?\d|\d(?:\.\d+)?\s?%")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s)\]|,;]+", re.IGNORECASE)
_NUMBER = re.compile(r"\$\s?\d|\d+(?:\.\d+)?\s?%|\b\d[\d,]*\.\d+\b|\b\d{1,3}(?:,\d{3})+\b")
_KEYWORDS = re.compile(
    r"guidance|outlook|forecast|expects?\b|reaffirm|rais(?:e|ed|es|ing)\b|lower(?:ed|s)?\b"
    r"|exceed|beat|miss(?:ed)?\b|consensus|surprise|record\b|increase|decrease|decline|grew"
    r"|growth|loss|impairment|restructur|resign|terminat|appoint|retire|acquisition|acquire"
    r"|merger|default|bankrupt|dividend|repurchase|buyback|investigation|restat|delist"
    r"|going concern|layoff|withdr|downgrade|upgrade|settle"
    # the words of results against expectations, however an earnings release phrases them
    r"|earnings|per (?:diluted )?share|\beps\b|estimate|expectation|analyst|\btop(?:s|ped|ping)\b"
    r"|short of|ahead of|surpass|revenue|net sales|net income",
    re.IGNORECASE,
)
# The sentences that state a price-moving fact (what signals.py reads): results against a
# reference, a guidance change, and the event words of the other items. They outrank the rest,
# which competes on numbers, keywords and position (a revenue line, a dateline, a quote).
_RESULT_WORD = re.compile(r"earnings|\beps\b|per (?:diluted )?share|net (?:income|loss)", re.I)
_REFERENCE_WORD = re.compile(r"consensus|estimate|expectation|analyst|outlook|guidance", re.I)
_GUIDANCE_WORD = re.compile(r"guidance|outlook|forecast", re.I)
_CHANGE_WORD = re.compile(
    r"rais|lower|reduc|\bcut|reaffirm|maintain|increas|updat|narrow|withdr|unchanged", re.I
)
_EVENT_WORD = re.compile(
    r"dividend|repurchase|buyback|convertible|offering|private placement|resign|retire"
    r"|step(?:s|ping)? down|terminat|bankrupt|chapter 11|delist|restat|impairment"
    r"|going concern|valued at|contract",
    re.IGNORECASE,
)
FACT_BONUS = 4.0


def _states_fact(sentence: str) -> bool:
    if " | " in sentence:  # a table row or header ("(per share data) | Quarter | Consensus")
        return False
    if _RESULT_WORD.search(sentence) and _REFERENCE_WORD.search(sentence):
        return True
    if _GUIDANCE_WORD.search(sentence) and _CHANGE_WORD.search(sentence):
        return True
    return bool(_EVENT_WORD.search(sentence))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(\[$])")
_ABBREV_END = re.compile(r"\b(?:Inc|Corp|Co|Ltd|No|Mr|Mrs|Ms|Dr|St|U\.S|vs|Jr|Sr|[ap]\.m)\.$")
_ITEM_LINE = re.compile(r"^\s*item\s+(\d{1,2}\.\d{2})\b", re.IGNORECASE | re.MULTILINE)
_COMPANY_SUFFIX = re.compile(
    r"(?:,?\s+(?:inc\.?|incorporated|corp\.?|corporation|co\.?|company|ltd\.?|limited|plc|llc"
    r"|l\.?p\.?|n\.?v\.?|s\.?a\.?|se|ag|holdings?|group|trust|bancorp))+\s*$",
    re.IGNORECASE,
)
_STATE_CODE = re.compile(r"\s*/[A-Z]{2}/?\s*$|\s*\\[A-Z]{2}\\?\s*$")
_LEGAL_WORD = re.compile(
    r"[\s,]+(?:inc|incorporated|corp|corporation|co|company|ltd|limited|plc|llc|l\.?p|n\.?v"
    r"|holdings?|group|trust|bancorp)\b\.?",
    re.IGNORECASE,
)
_LEGAL_FORMS = {
    "inc": r"(?:inc\.?|incorporated)",
    "incorporated": r"(?:inc\.?|incorporated)",
    "corp": r"(?:corp\.?|corporation)",
    "corporation": r"(?:corp\.?|corporation)",
    "co": r"(?:co\.?|company)",
    "company": r"(?:co\.?|company)",
    "ltd": r"(?:ltd\.?|limited)",
    "limited": r"(?:ltd\.?|limited)",
}
_COMMON_FIRST_WORDS = frozenset(
    "american first general united national international global capital federal southern "
    "northern western eastern pacific atlantic central home health energy financial bank "
    "community citizens peoples security standard universal advanced applied digital "
    "golden great royal liberty pioneer summit premier new old north south east west "
    "texas california florida ohio york".split()
)
# Uppercase words that are far more often English/finance words than tickers.
_TICKER_STOP = frozenset(
    "A I AN AT BE BY GO IT ON OR SO TO US WE ALL ARE CAN FOR NOW ONE BIG KEY CAT LOW HAS SEE NEW "
    "CEO CFO COO USA EPS GAAP SEC NYSE ITEM FORM".split()
)
# Tokens reserved per unit for the joiner (space or newline) when summing unit token counts.
_JOIN_TOKENS = 1
MAX_UNIT_CHARS = 600  # longer paragraphs (flattened tables) are split at "; " / " | " first


@dataclass
class FilingDoc:
    """One filing as the digest sees it: metadata, the main document's text, its exhibits."""

    accession: str
    form: str = "8-K"
    items: list[str] = field(default_factory=list)
    accepted_at: dt.datetime | None = None
    company: str | None = None
    ticker: str | None = None
    main_text: str = ""
    exhibits: list[tuple[str, str]] = field(default_factory=list)
    """(type like "EX-99.1", text) per exhibit."""
    warnings: list[str] = field(default_factory=list)
    """The parser's doubts about a file (e.g. "no item headings found"): compare and rank show
    them, since a digest of such a file may hold only its cover."""

    def full_text(self) -> str:
        """Main text and exhibits, for signal extraction."""
        return "\n\n".join([self.main_text] + [text for _, text in self.exhibits])


@dataclass
class _Unit:
    """A sentence (or header line) that may go into the digest."""

    order: int
    text: str
    score: float
    mandatory: bool = False
    newline: bool = True  # starts a new line (else joined to the previous unit with a space)


# ---------------------------------------------------------------------------------------------
# Loading filings.


def _looks_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<div" in head or "<p" in head or "<table" in head


def _plain(text: str) -> str:
    if _looks_html(text):
        from filingcontrast.corpus.html import html_to_text

        return html_to_text(text)
    return text


def filing_doc_from_store(store: Any, accession: str) -> FilingDoc:
    """The filing `accession` from an open `Store` (UserError when it is not there)."""
    docs = filing_docs_from_store(store, [accession])
    if accession not in docs:
        raise UserError(f"{store.path}: accession {accession}: no such filing in the store")
    if not docs[accession].main_text:  # as `pairs` refuses it: a digest of the header only
        raise UserError(f"{store.path}: filing {accession} has no main document text")
    return docs[accession]


def filing_docs_from_store(store: Any, accessions: Sequence[str]) -> dict[str, FilingDoc]:
    """Many filings at once (two queries), keyed by accession; missing ones are absent."""
    if not accessions:
        return {}
    acc = list(dict.fromkeys(accessions))
    rows = store.query(
        "SELECT f.accession, f.form, f.items, f.accepted_at, f.ticker, c.name AS company "
        "FROM filings f LEFT JOIN companies c ON c.cik = f.cik "
        "WHERE f.accession IN (SELECT unnest(?::VARCHAR[]))",
        [acc],
    )
    parts = store.query(
        "SELECT accession, name, kind, exhibit_type, text FROM documents "
        "WHERE accession IN (SELECT unnest(?::VARCHAR[]))",
        [acc],
    )
    by_accession: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        by_accession.setdefault(p["accession"], []).append(p)
    return {
        r["accession"]: filing_doc_from_rows(r, by_accession.get(r["accession"], []), r["company"])
        for r in rows
    }


def filing_doc_from_rows(
    filing: dict[str, Any], documents: Sequence[dict[str, Any]], company: str | None
) -> FilingDoc:
    """A FilingDoc from a `filings` row, its `documents` rows and the company name: the one
    conversion for a filing read from the store and one built from a file (compare).

    Main documents first, then exhibits, each by name (several main documents are joined,
    never dropped); documents without text are left out.
    """
    doc = FilingDoc(
        accession=filing["accession"],
        form=filing.get("form") or "8-K",
        items=list(filing.get("items") or []),
        accepted_at=filing.get("accepted_at"),
        company=company,
        ticker=filing.get("ticker"),
    )
    for part in sorted(documents, key=lambda d: (d["kind"] != "main", d["name"])):
        if not part["text"]:
            continue
        if part["kind"] == "main":
            doc.main_text += ("\n\n" if doc.main_text else "") + part["text"]
        else:
            doc.exhibits.append((part["exhibit_type"] or part["name"], part["text"]))
    return doc


def filing_doc_from_file(path: str | Path) -> FilingDoc:
    """A filing from an .htm/.txt file: the rows `ingest files` would store for it
    (`corpus.files.file_filing`: the SGML header's acceptance time and company, the file
    name's ticker, a submission's exhibits), as `filing_doc_from_rows` reads them back.

    The file stem stands in for an accession the name and header lack. UserError naming the
    file when it cannot be read, is empty or is not an 8-K.
    """
    from filingcontrast.corpus.files import file_filing

    path = Path(path)
    rows = file_filing(path, fallback_accession=path.stem)
    if isinstance(rows, str):
        raise UserError(f"{path}: {rows}")
    doc = filing_doc_from_rows(rows.filing, rows.documents, rows.company)
    doc.warnings = list(rows.warnings)
    return doc


# ---------------------------------------------------------------------------------------------
# Anonymization.


def name_variants(company: str | None) -> tuple[list[str], list[str]]:
    """Spellings of a company name to mask: (matched in any case, matched only in Title or
    UPPER case). Any case: the name as given and without legal suffixes. Title/UPPER only, as
    they may be plain words: the words before the first legal word ("HOME HEALTH CORP OF
    AMERICA INC" -> "Home Health") and a distinctive first word ("Nuance" of "Nuance
    Communications")."""
    if not company or not company.strip():
        return [], []
    full = " ".join(_STATE_CODE.sub("", company).split()).strip(" ,")
    core = _COMPANY_SUFFIX.sub("", full).strip(" ,")
    prefix = _LEGAL_WORD.split(full, maxsplit=1)[0].strip(" ,")
    loose = {full, core} if core.lower() not in _COMMON_FIRST_WORDS else {full}
    strict = set()
    if prefix not in loose and (len(prefix.split()) > 1 or _distinctive(prefix)):
        strict.add(prefix)
    first = short_name(company)
    if first:
        strict.add(first)
    by_len = lambda vs: sorted((v for v in vs if len(v) >= 3), key=len, reverse=True)  # noqa: E731
    return by_len(loose), by_len(strict)


def _distinctive(word: str) -> bool:
    return len(word) >= 4 and word.isalpha() and word.lower() not in _COMMON_FIRST_WORDS


def _flex(name: str) -> str:
    """Regex for a name whose legal words may be spelled out or abbreviated ("CORP" matches
    "Corporation"), with optional commas and periods."""
    parts = []
    for word in re.split(r"[\s,]+", name):
        key = word.lower().rstrip(".")
        parts.append(_LEGAL_FORMS.get(key, re.escape(word)))
    return r",?\s+".join(parts)


def short_name(company: str | None) -> str | None:
    """A distinctive first word of a multi-word name, or None."""
    if not company:
        return None
    words = _COMPANY_SUFFIX.sub("", _STATE_CODE.sub("", company)).split()
    if len(words) < 2:
        return None
    first = words[0].strip(",.")
    return first if _distinctive(first) else None


def anonymize_text(text: str, company: str | None, ticker: str | None) -> str:
    """Replace the company's name variants by "the Company" and its ticker by "[TICKER]"."""
    name_re, ticker_ctx_re, ticker_re = _anon_patterns(company or "", (ticker or "").strip())
    # Contact e-mails and web addresses spell the name or ticker in lower case ("ir@acme.com").
    text = _EMAIL.sub("[EMAIL]", text)
    text = _URL.sub("[URL]", text)
    if name_re is not None:
        text = name_re.sub(_company_repl, text)
    if ticker_ctx_re is not None:
        text = ticker_ctx_re.sub(r"\1" + ANON_TICKER, text)
    if ticker_re is not None:
        text = ticker_re.sub(ANON_TICKER, text)
    return text


@functools.lru_cache(maxsize=4096)
def _anon_patterns(
    company: str, ticker: str
) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None, re.Pattern[str] | None]:
    """Compiled patterns per company (immutable, cached: every sentence of a filing uses them)."""
    loose, strict = name_variants(company)
    variants = [_flex(v) for v in loose]
    forms = sorted({f for v in strict for f in (v.title(), v.upper(), v)}, key=len, reverse=True)
    if forms:  # case-sensitive: "Nuance" / "NUANCE", never "nuance"
        variants.append("(?-i:" + "|".join(map(re.escape, forms)) + ")")
    name_re = (
        re.compile(r"(?<![\w])(?:" + "|".join(variants) + r")(?![\w])", re.I) if variants else None
    )
    if not ticker:
        return name_re, None, None
    t = re.escape(ticker)
    # In an exchange context the ticker is unambiguous; bare, only when it cannot be a word.
    ctx_re = re.compile(
        r"((?:NYSE|Nasdaq|NASDAQ|NYSE American|AMEX|OTC\w*)\s*(?:Global Select Market\s*)?"
        r"[:\-]\s*)" + t + r"\b"
    )
    bare = ticker.upper() not in _TICKER_STOP and len(ticker) >= 2
    return name_re, ctx_re, re.compile(r"(?<![\w\[])" + t + r"(?![\w\]])") if bare else None


def _company_repl(match: re.Match[str]) -> str:
    before = match.string[max(0, match.start() - 3) : match.start()].rstrip(" ")
    at_start = not before or before.endswith(("\n", ".", "!", "?"))
    return "The Company" if at_start else ANON_COMPANY


# ---------------------------------------------------------------------------------------------
# Header and sections.


def item_titles() -> dict[str, str]:
    """Official item titles, first clause only ("5.02 Departure of Directors or Certain
    Officers; Election of ..." costs 30 tokens for little), from the parser's table."""
    try:
        from filingcontrast.corpus.parse import ITEM_TITLES
    except ImportError:  # parser not installed: codes alone
        return {}
    return {code: title.split(";")[0].strip() for code, title in ITEM_TITLES.items()}


def acceptance_phrase(accepted_at: dt.datetime | None) -> str:
    """ "Tuesday 16:05 ET (after the close)": when the market could react matters for returns."""
    if accepted_at is None:
        return "unknown"
    if accepted_at.tzinfo is None:  # the store keeps UTC
        accepted_at = accepted_at.replace(tzinfo=dt.UTC)
    local = accepted_at.astimezone(NY)
    minutes = local.hour * 60 + local.minute
    if minutes < 9 * 60 + 30:
        when = "before the open"
    elif minutes < 16 * 60:
        when = "during market hours"
    else:
        when = "after the close"
    return f"{local:%A %H:%M} ET ({when})"


def _header_lines(doc: FilingDoc) -> list[str]:
    # Short labels, not the official titles: the titles cost ~15 tokens per item and carry
    # nothing the item code does not, while every digest token is paid for in training.
    titles = item_titles()
    items = (
        "; ".join(f"{c} {ITEM_LABELS.get(c) or titles.get(c, '')}".strip() for c in doc.items)
        or "none listed"
    )
    return [
        f"Form: {doc.form or '8-K'}",
        f"Items: {items}",
        f"Accepted: {acceptance_phrase(doc.accepted_at)}",
    ]


def _main_parts(doc: FilingDoc) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The main document's item -> informative text (boilerplate removed) via parse_8k, a simple
    split otherwise (whole text, nothing split off); and the exhibits pasted into it after the
    signature, which parse_8k splits off (some filers put the press release there instead of in
    a document of its own)."""
    text = doc.main_text
    try:
        from filingcontrast.corpus.parse import parse_8k

        parsed = parse_8k(text, f"{doc.accession}.txt")
        sections = parsed.informative_sections()
        if sections:
            pasted = [(e.type, e.text) for e in parsed.exhibits if e.text]
            return {k: _drop_heading(v) for k, v in sections.items() if v and v.strip()}, pasted
    except (ImportError, UserError):
        pass  # no parser yet, or text it cannot read as an 8-K: fall back to item headings
    return _split_items(_plain(text)), []


_HEADING_PREFIX = re.compile(
    r"^[\s|*]*items?\s+[\d.]+(?:\s*(?:,|and|&)\s*[\d.]+)*[\s.:\-–—]*", re.I
)


def _drop_heading(section: str) -> str:
    """A parsed section starts with its "Item 2.02 ..." heading line: the digest writes its own.
    Some filings run the heading into the first paragraph ("Item 8.01 Other Events. On May 1
    ..."): then only the item number and its official title are cut, never the paragraph."""
    from filingcontrast.corpus.parse import ITEM_TITLES

    first, _, rest = section.strip().partition("\n")
    m = _HEADING_PREFIX.match(first)
    if not m:
        return section
    tail = first[m.end() :]
    for title in sorted(ITEM_TITLES.values(), key=len, reverse=True):
        if tail.lower().startswith(title.lower()):
            tail = tail[len(title) :].lstrip(" .:-–—")
            break
    if len(tail) < 40:  # what is left of the line is still part of the heading
        return rest
    return tail + ("\n" + rest if rest else "")


def _split_items(text: str) -> dict[str, str]:
    """Split plain text at "Item N.NN" lines; text before the first item is cover page."""
    marks = list(_ITEM_LINE.finditer(text))
    if not marks:
        return {"": text}
    out: dict[str, str] = {}
    for m, nxt in zip(marks, marks[1:] + [None]):
        body = text[m.end() : nxt.start() if nxt else len(text)]
        body = body.split("\n", 1)[1] if "\n" in body else ""  # drop the rest of the title line
        out[m.group(1)] = (out.get(m.group(1), "") + "\n" + body).strip()
    return out


def _sentences(text: str) -> list[tuple[str, bool]]:
    """(sentence, starts a new paragraph) in order. Paragraphs are separated by blank lines;
    hard-wrapped lines inside one are joined, table rows (" | ") stay one unit each, and long
    units are split at '; ' or ' | '."""
    out: list[tuple[str, bool]] = []
    for para in _paragraphs(text):
        first = True
        for sent in _split_sentences(para) if " | " not in para else [para]:
            for piece in _split_long(sent):
                out.append((piece, first))
                first = False
    return out


def _paragraphs(text: str) -> list[str]:
    paras: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        prose: list[str] = []
        for line in block.split("\n"):
            line = " ".join(line.split())
            if not line:
                continue
            if " | " in line or _is_heading(line):
                if prose:
                    paras.append(" ".join(prose))
                    prose = []
                paras.append(line)
            else:
                prose.append(line)
        if prose:
            paras.append(" ".join(prose))
    return paras


def _is_heading(line: str) -> bool:
    """A short line without final punctuation ("Underwriting Agreement") stands alone."""
    return (
        len(line) < 60
        and not line.endswith((".", ",", ";", ":"))
        and line[:1].isupper()
        and (line.istitle() or line.isupper())
    )


def _split_sentences(para: str) -> list[str]:
    parts = _SENTENCE_END.split(para)
    merged: list[str] = []
    for part in parts:
        if merged and _ABBREV_END.search(merged[-1]):
            merged[-1] += " " + part  # "Acme Inc. announced" is one sentence
        else:
            merged.append(part)
    return merged


def _split_long(sent: str) -> list[str]:
    if len(sent) <= MAX_UNIT_CHARS:
        return [sent]
    sep = " | " if " | " in sent else "; " if "; " in sent else " "
    pieces, cur = [], ""
    for token in sent.split(sep):
        if cur and len(cur) + len(token) + len(sep) > MAX_UNIT_CHARS:
            pieces.append(cur)
            cur = token
        else:
            cur = f"{cur}{sep}{token}" if cur else token
    if cur:
        pieces.append(cur)
    return pieces


def _score(sentence: str, rank_in_section: int) -> float:
    """Informativeness: a stated fact (`_states_fact`), numbers, event words, and being among a
    section's first sentences."""
    score = 0.0
    if rank_in_section == 0:
        score += 3.0
    elif rank_in_section == 1:
        score += 2.0
    elif rank_in_section < 4:
        score += 0.5
    if _NUMBER.search(sentence):
        score += 2.0
    score += min(4.0, 2.0 * len(_KEYWORDS.findall(sentence)))
    if _states_fact(sentence):
        score += FACT_BONUS
    score -= len(sentence) / 2000  # shorter wins ties: more facts per token
    return score


KEY_FACTS_LEAD = "Key facts:"
NO_KEY_FACTS = "none extracted"


def key_facts_line(facts: Sequence[str]) -> str:
    """The digest's optional first content line: the filing's extracted facts (signals.py)."""
    return f"{KEY_FACTS_LEAD} {'; '.join(facts) if facts else NO_KEY_FACTS}."


def _units(doc: FilingDoc, anonymize: bool, facts: Sequence[str] | None = None) -> list[_Unit]:
    """All candidate lines of a digest: mandatory headers (and the key-facts line when `facts`
    is given), then scored sentences in order."""
    units: list[_Unit] = []

    def add(text: str, score: float, mandatory: bool = False, newline: bool = True) -> None:
        units.append(_Unit(len(units), text, score, mandatory, newline))

    def anon(text: str) -> str:
        return anonymize_text(text, doc.company, doc.ticker) if anonymize else text

    for line in _header_lines(doc):
        add(line, 0.0, mandatory=True)
    if facts is not None:
        add(anon(key_facts_line(facts)), 0.0, mandatory=True)
    sections, pasted = _main_parts(doc)
    sections = {c: b for c, b in sections.items() if c not in EXHIBIT_ITEMS}
    # 9.01 (financial statements and exhibits) is a list of exhibit names: never informative.
    # With one informative item the "Items:" line already names it, so its own header line
    # would only spend tokens; with several, each section says which item it is.
    labelled = sum(1 for c in sections if c) > 1
    for code, body in sections.items():
        if code and labelled:
            add(f"Item {code}:", 0.0, mandatory=True)
        _add_sentences(add, anon(body))
    own = {ex_type for ex_type, _ in doc.exhibits}
    for ex_type, text in [*doc.exhibits, *(ex for ex in pasted if ex[0] not in own)]:
        if not ex_type.upper().startswith("EX-99"):
            continue  # contracts (EX-10), bylaws (EX-3) ... rarely fit and rarely move prices
        add(f"{ex_type.upper()}:", 0.0, mandatory=True)
        _add_sentences(add, anon(_plain(text)), bonus=1.0)
    return units


def _drop_empty_exhibit_headers(units: list[_Unit]) -> list[_Unit]:
    """An exhibit label none of whose sentences made the budget says nothing: drop it."""
    out = []
    for i, u in enumerate(units):
        is_label = u.mandatory and u.text.startswith("EX-") and u.text.endswith(":")
        nxt = units[i + 1] if i + 1 < len(units) else None
        if is_label and (nxt is None or nxt.mandatory):
            continue
        out.append(u)
    return out


def _add_sentences(add: Any, body: str, bonus: float = 0.0) -> None:
    rank = 0
    for sent, new_para in _sentences(body):
        if _BOILERPLATE.search(sent) or len(sent) < 3:
            continue
        if _LOW_VALUE.search(sent) and not _AMOUNT.search(sent):
            continue
        # A section's first sentence starts its own line (its header may be left out).
        add(sent, _score(sent, rank) + bonus, newline=new_para or rank == 0)
        rank += 1


# ---------------------------------------------------------------------------------------------
# Selection within the budget.


def _join(units: Sequence[_Unit]) -> str:
    out = ""
    prev = None
    for u in units:
        if not out:
            out = u.text
        elif u.newline or u.mandatory or (prev is not None and prev.mandatory):
            out += "\n" + u.text
        else:
            out += " " + u.text
        prev = u
    return out


def _select(units: list[_Unit], counts: list[int], budget: int) -> list[_Unit]:
    """Mandatory units first, then the best-scoring sentences that fit, in original order."""
    chosen = [i for i, u in enumerate(units) if u.mandatory]
    used = sum(counts[i] + _JOIN_TOKENS for i in chosen)
    optional = sorted(
        (i for i, u in enumerate(units) if not u.mandatory), key=lambda i: (-units[i].score, i)
    )
    for i in optional:
        cost = counts[i] + _JOIN_TOKENS
        if used + cost <= budget:
            chosen.append(i)
            used += cost
    # Item headers whose sentences all missed the budget still say which items the filing has.
    return _drop_empty_exhibit_headers([units[i] for i in sorted(chosen)])


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Token counts of many texts in one batch (no special tokens)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # fast tokenizer: skip transformers' per-text Python wrapping
        return [len(e.ids) for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    return [len(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


_count = count_tokens


def filing_digests(
    docs: Sequence[FilingDoc],
    budget_tokens: int,
    tokenizer: Any,
    anonymize: bool = True,
    facts: Sequence[Sequence[str]] | None = None,
) -> list[str]:
    """Digests of many filings, each at most `budget_tokens` tokens (one tokenizer batch).
    `facts` (one list per doc, from signals.py) adds a `Key facts:` line after the header."""
    return digests_with_counts(docs, budget_tokens, tokenizer, anonymize, facts)[0]


def digests_with_counts(
    docs: Sequence[FilingDoc],
    budget_tokens: int,
    tokenizer: Any,
    anonymize: bool = True,
    facts: Sequence[Sequence[str]] | None = None,
) -> tuple[list[str], list[int]]:
    """`filing_digests` plus each digest's exact token count."""
    if budget_tokens < 16:
        raise UserError(f"digest budget {budget_tokens} tokens is too small (need >= 16)")
    if facts is not None and len(facts) != len(docs):
        raise ValueError(f"facts for {len(facts)} filings, digests for {len(docs)}")
    all_units = [
        _units(doc, anonymize, None if facts is None else facts[i]) for i, doc in enumerate(docs)
    ]
    flat = [u.text for units in all_units for u in units]
    flat_counts = _count(tokenizer, flat)
    chosen, pos = [], 0
    for units in all_units:
        chosen.append(_select(units, flat_counts[pos : pos + len(units)], budget_tokens))
        pos += len(units)
    digests = [_join(c) for c in chosen]
    # Selection sums unit counts (+1 per join), which is within a token or two of the joined
    # text's count on real filings but can undercount by more (sentences opening with a word
    # that tokenizes differently after a space): every digest is counted exactly, and the rare
    # overrun trimmed.
    counts = _count(tokenizer, digests)
    for i, n in enumerate(counts):
        if n > budget_tokens:
            digests[i] = _trim(chosen[i], budget_tokens, tokenizer)
            counts[i] = _count(tokenizer, [digests[i]])[0]
    return digests, counts


def _trim(chosen: list[_Unit], budget: int, tokenizer: Any) -> str:
    """Drop the lowest-scoring chosen sentences until the exact count fits; when the mandatory
    lines alone do not fit, `_shrink_mandatory` takes whole lines and facts away."""
    chosen = list(chosen)
    digest = _join(chosen)
    while _count(tokenizer, [digest])[0] > budget:
        optional = [u for u in chosen if not u.mandatory]
        if not optional:
            return _shrink_mandatory(chosen, budget, tokenizer)
        chosen.remove(min(optional, key=lambda u: (u.score, -u.order)))
        chosen = _drop_empty_exhibit_headers(chosen)  # its last sentence may have gone
        digest = _join(chosen)
    return digest


def _shrink_mandatory(units: list[_Unit], budget: int, tokenizer: Any) -> str:
    """Mandatory lines over the budget: drop the item and exhibit labels, then the key facts
    one by one from the last (never a fact cut in half: "$5,060.0M" must not become "$5,060"),
    then the key-facts line; only headers that alone exceed the budget are cut by tokens."""
    units = list(units)

    def fits() -> bool:
        return _count(tokenizer, [_join(units)])[0] <= budget

    labels = re.compile(r"(?:Item \d{1,2}(?:\.\d{2})?|EX-[\w.\-]+):")
    for u in [u for u in units if labels.fullmatch(u.text)]:
        if fits():
            return _join(units)
        units.remove(u)
    lead = f"{KEY_FACTS_LEAD} "
    at = next((i for i, u in enumerate(units) if u.text.startswith(lead)), None)
    if at is not None:
        facts = units[at].text[len(lead) :].rstrip(".").split("; ")
        while not fits() and len(facts) > 1:
            facts.pop()
            units[at] = dc_replace(units[at], text=f"{lead}{'; '.join(facts)}; …")
        if not fits():
            units.pop(at)
    digest = _join(units)
    if fits():
        return digest
    ids = tokenizer(digest, add_special_tokens=False)["input_ids"][:budget]
    return tokenizer.decode(ids)


def filing_digest(
    doc: FilingDoc,
    budget_tokens: int,
    tokenizer: Any,
    anonymize: bool = True,
    facts: Sequence[str] | None = None,
) -> str:
    """One filing's digest within `budget_tokens` (see module docstring)."""
    return filing_digests(
        [doc], budget_tokens, tokenizer, anonymize, None if facts is None else [facts]
    )[0]


# ---------------------------------------------------------------------------------------------
# The question.


def digest_items(digest: str) -> list[str]:
    """Item codes from a digest's "Items:" header line."""
    m = re.search(r"^Items: (.*)$", digest, re.MULTILINE)
    if not m:
        return []
    return re.findall(r"(?:^|; )(\d{1,2}(?:\.\d{2})?)\b", m.group(1))


def items_parenthetical(items: Sequence[str]) -> str:
    """ "2.02 earnings, 7.01 Reg FD disclosure" (9.01 or old 7 only when the sole item)."""
    shown = [c for c in items if c not in EXHIBIT_ITEMS] or list(items)
    if not shown:
        return "8-K"
    return ", ".join(f"{c} {ITEM_LABELS[c]}" if c in ITEM_LABELS else f"Item {c}" for c in shown)


def render_question(items_a: Sequence[str], items_b: Sequence[str]) -> str:
    return (
        f"Compare Filing A ({items_parenthetical(items_a)}) and "
        f"Filing B ({items_parenthetical(items_b)}). Which is better?"
    )


def render_instruction(digest_a: str, digest_b: str) -> str:
    """The seed's question, then both digests."""
    question = render_question(digest_items(digest_a), digest_items(digest_b))
    return f"{question}\n\nFiling A:\n{digest_a}\n\nFiling B:\n{digest_b}"


def swapped_instruction(row: dict[str, Any]) -> str:
    """The same pair with B shown first (for position-bias checks)."""
    meta = row["meta"]
    return render_instruction(meta["b"]["digest"], meta["a"]["digest"])
