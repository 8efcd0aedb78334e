"""Structured signals read from 8-K text with careful regular expressions (no ML).

`extract_signals(text)` reads the main document and exhibits concatenated and returns a
`Signals` dataclass: EPS actual vs consensus (or vs the company's outlook) and the surprise,
revenue vs consensus, guidance raised/lowered/reaffirmed, equity and convertible offerings,
officer departures (role and kind), buybacks, dividend changes, impairments, restructurings,
restatements (4.02 non-reliance), delisting notices, bankruptcy and contract size (relative to
revenue when the filing states it). `signal_score(signals)` turns them into an expected
direction of the abnormal return (the signal-rule baseline), with signs and rough sizes from the
event-study literature (docs/simulated-market.md).

The rules work sentence by sentence, drop forward-looking-statement boilerplate first (it lists
"restructuring", "impairment", "bankruptcy" as risks), and compare numbers rather than trusting
verbs where a filing gives both the old and the new figure.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from filingcontrast.corpus.sim_text import ITEM_TITLES

# ---------------------------------------------------------------------------------------------
# Numbers.

_UNITS = {"billion": 1000.0, "bn": 1000.0, "b": 1000.0, "million": 1.0, "mm": 1.0, "m": 1.0}
_UNIT = r"(?:billion|million|bn|mm|m|b)\b"


def _amount(groups: bool) -> str:
    """A dollar amount with an optional unit; `groups`: capture (number, unit)."""
    g = "(" if groups else "(?:"
    return rf"\$\s?{g}\d[\d,]*(?:\.\d+)?)(?:\s*{g}{_UNIT}))?"


MONEY_RE = re.compile(_amount(groups=True), re.IGNORECASE)
# A per-share amount: $1.32, $(0.12), -$0.12, "a loss of $0.12"; never followed by a unit.
EPS_RE = re.compile(
    r"(-\s?)?\$\s?(\()?(\d{1,3}\.\d{2})\)?(?!\d)(?!\s*" + _UNIT + ")", re.IGNORECASE
)
RANGE_RE = re.compile(
    rf"({_amount(groups=False)})\s*(?:to|-|–|and)\s*({_amount(groups=False)})", re.IGNORECASE
)


def parse_money(text: str) -> float | None:
    """First dollar amount in `text`, in $ millions (bare amounts >= 100,000 are dollars)."""
    m = MONEY_RE.search(text)
    return _money_value(m) if m else None


def _money_value(m: re.Match[str]) -> float:
    value = float(m.group(1).replace(",", ""))
    unit = (m.group(2) or "").lower()
    if unit:
        return value * _UNITS[unit]
    return value / 1e6 if value >= 1e5 else value


def _eps_amounts(sentence: str) -> list[tuple[int, float]]:
    """(position, signed value) of per-share amounts; "loss" just before makes it negative."""
    out = []
    for m in EPS_RE.finditer(sentence):
        v = float(m.group(3))
        before = sentence[max(0, m.start() - 30) : m.start()].lower()
        if m.group(1) or m.group(2) or re.search(r"\bloss\b[^$]*$", before):
            v = -v
        out.append((m.start(), v))
    return out


# ---------------------------------------------------------------------------------------------
# Text preparation.

_BOILER = re.compile(
    r"forward-looking|private securities litigation reform act|risks and uncertainties|"
    r"could cause (?:actual|our) results|undertakes no obligation|risk factors",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    """Sentences (and table lines) with forward-looking boilerplate and item headings dropped.

    Lines are joined into paragraphs first (old filings wrap sentences at ~70 characters);
    a blank line, a table line ("a | b") or a line ending in sentence punctuation ends one.
    """
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\xa0", " ")
    paras: list[str] = []
    buf: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if _is_heading(line):
            line = ""  # an item heading ends a paragraph and says nothing itself
        if not line or "|" in line:
            if buf:
                paras.append(" ".join(buf))
                buf = []
            if line:
                paras.append(line)
            continue
        buf.append(line)
        if line[-1] in ".!?:;":
            paras.append(" ".join(buf))
            buf = []
    if buf:
        paras.append(" ".join(buf))
    out = []
    for para in paras:
        for sent in _SPLIT.split(para):
            sent = sent.strip()
            if sent and not _BOILER.search(sent):
                out.append(sent)
    return out


# Sentence ends, except after abbreviations that end company and personal names.
_SPLIT = re.compile(
    r"(?<!\bInc\.)(?<!\bCorp\.)(?<!\bCo\.)(?<!\bLtd\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)"
    r"(?<!\bDr\.)(?<!\bNo\.)(?<!\bU\.S\.)(?<=[.!?])\s+(?=[A-Z\"(])"
)
_ITEM_LINE = re.compile(r"^item\s+\d+(?:\.\d+)?\b[\s.:\-\u2013\u2014]*", re.IGNORECASE)
_TITLES = tuple(t.lower().rstrip(".") for t in ITEM_TITLES.values()) + (
    "departure of directors or principal officers",
    "notice of delisting",
)


def _is_heading(line: str) -> bool:
    """An item heading line ("Item 3.01 Notice of Delisting ...") or a bare official title."""
    if len(line) > 300:
        return False
    rest = _ITEM_LINE.sub("", line).lower().rstrip(".")
    return (
        bool(_ITEM_LINE.match(line))
        and (not rest or rest.startswith(_TITLES))
        or (rest.startswith(_TITLES) and len(rest) < 260)
    )


def _negated(sentence: str, match_start: int) -> bool:
    """A "not"/"no" in the few words before the match ("did not raise", "no impairment")."""
    before = sentence[max(0, match_start - 40) : match_start].lower()
    return bool(re.search(r"\b(?:not|no|never|neither|nor|without)\b(?:\s+\S+){0,3}\s*$", before))


# ---------------------------------------------------------------------------------------------
# The signals.


@dataclass
class Departure:
    """One officer departure."""

    role: str
    """"CEO", "CFO" or "other"."""
    kind: str
    """"retirement" (planned), "resignation" or "termination"."""
    successor: bool = False
    """A successor (permanent or interim) is named."""
    after_poor_results: bool = False
    """The filing ties the departure to poor results (the market may welcome it)."""


@dataclass
class Signals:
    """What the rules read from one filing; None / False = not found."""

    eps_actual: float | None = None
    eps_reference: float | None = None
    eps_reference_kind: str | None = None
    """"consensus" or "outlook" (the company's own prior guidance)."""
    eps_surprise_pct: float | None = None
    revenue: float | None = None
    """$ millions."""
    revenue_reference: float | None = None
    revenue_surprise_pct: float | None = None
    guidance: str | None = None
    """"raised", "lowered" or "reaffirmed"."""
    preannounced: bool = False
    equity_offering: str | None = None
    """"public" or "private" (placement)."""
    offering_amount: float | None = None
    convertible: bool = False
    convertible_amount: float | None = None
    departures: list[Departure] = field(default_factory=list)
    buyback: bool = False
    buyback_amount: float | None = None
    dividend_change: str | None = None
    """"raise", "cut", "initiate", "suspend" or "regular"."""
    impairment: bool = False
    impairment_amount: float | None = None
    restructuring: bool = False
    restatement: bool = False
    delisting_notice: bool = False
    bankruptcy: bool = False
    contract_value: float | None = None
    company_revenue: float | None = None
    """Annual revenue when the filing states it ($ millions)."""
    contract_rel_revenue: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def labels(self) -> set[str]:
        """Short labels ("eps:beat", "dividend:cut", ...) comparable with the simulator's truth."""
        out: set[str] = set()
        if self.eps_actual is not None and self.eps_reference is not None:
            a, c = self.eps_actual, self.eps_reference
            out.add("eps:" + ("beat" if a > c else "miss" if a < c else "inline"))
        if self.guidance:
            out.add(f"guidance:{self.guidance}")
        if self.equity_offering:
            out.add(f"offering:{self.equity_offering}")
        if self.convertible:
            out.add("convertible")
        for d in self.departures:
            out.add(f"departure:{d.role}:{d.kind}")
        if self.buyback:
            out.add("buyback")
        if self.dividend_change:
            out.add(f"dividend:{self.dividend_change}")
        for name in ("restructuring", "impairment", "restatement", "bankruptcy"):
            if getattr(self, name):
                out.add(name)
        if self.delisting_notice:
            out.add("delisting")
        if self.contract_value is not None:
            out.add("contract")
        return out

    def facts(self) -> list[str]:
        """Short human phrases, e.g. "EPS $1.32 beat consensus $1.20 by 10.0%". Comparisons are
        stated as words (beat / missed / matched): a small model reads the verb far more easily
        than it compares two numbers or the sign of a percentage (docs/demo.md, the probes)."""
        f: list[str] = []
        if self.eps_actual is not None and self.eps_reference is not None:
            ref = "consensus" if self.eps_reference_kind == "consensus" else "outlook"
            f.append(f"EPS {_d(self.eps_actual)} {_versus(self.eps_surprise_pct)} {ref} "
                     f"{_d(self.eps_reference)}{_by(self.eps_surprise_pct)}")  # fmt: skip
        if self.revenue is not None and self.revenue_reference is not None:
            f.append(
                f"revenue ${self.revenue:,.1f}M {_versus(self.revenue_surprise_pct)} consensus "
                f"${self.revenue_reference:,.1f}M{_by(self.revenue_surprise_pct)}"
            )
        if self.preannounced:
            f.append("results pre-announced")
        if self.guidance:
            f.append(f"guidance {self.guidance}")
        if self.equity_offering:
            f.append(f"{self.equity_offering} equity offering{_amt(self.offering_amount)}")
        if self.convertible:
            f.append(f"convertible notes{_amt(self.convertible_amount)}")
        for d in self.departures:
            extra = " after poor results" if d.after_poor_results else ""
            succ = ", successor named" if d.successor else ""
            f.append(f"{d.role} {d.kind}{extra}{succ}")
        if self.buyback:
            f.append(f"buyback{_amt(self.buyback_amount)}")
        if self.dividend_change:
            f.append(f"dividend {self.dividend_change}")
        if self.impairment:
            f.append(f"impairment{_amt(self.impairment_amount)}")
        if self.restructuring:
            f.append("restructuring")
        if self.restatement:
            f.append("restatement (non-reliance)")
        if self.delisting_notice:
            f.append("delisting notice")
        if self.bankruptcy:
            f.append("bankruptcy filing")
        if self.contract_value is not None:
            rel = (
                f" ({self.contract_rel_revenue:.0%} of revenue)"
                if self.contract_rel_revenue is not None
                else ""
            )
            f.append(f"contract ${self.contract_value:,.1f}M{rel}")
        return f


def _versus(pct: float | None) -> str:
    """The comparison verb for a surprise in percent (None: unknown, stated neutrally)."""
    if pct is None:
        return "vs"
    return "beat" if pct > 0 else "missed" if pct < 0 else "matched"


def _by(pct: float | None) -> str:
    return f" by {abs(pct):.1f}%" if pct else ""


def _d(x: float) -> str:
    return f"${x:.2f}" if x >= 0 else f"-${-x:.2f}"


def _amt(x: float | None) -> str:
    return f" ${x:,.1f}M" if x is not None else ""


# ---------------------------------------------------------------------------------------------
# Rules.

_REF_CONS = re.compile(
    r"consensus|analysts?'?\s*(?:had\s+)?(?:expected|estimates?|expectations?)|"
    r"street'?s?\s+(?:average\s+)?estimates?|(?:average|mean)\s+estimate",
    re.IGNORECASE,
)
_REF_GUIDE = re.compile(r"\b(?:outlook|guidance)\b", re.IGNORECASE)
_EPS_WORDS = re.compile(r"\bEPS\b|per (?:diluted )?share|earnings", re.IGNORECASE)
_REV_WORDS = re.compile(r"\b(?:revenues?|net sales|sales)\b", re.IGNORECASE)


def _eps(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        if not _EPS_WORDS.search(sent) or "|" in sent:
            continue
        ref = _REF_CONS.search(sent)
        kind = "consensus"
        if ref is None:
            ref = _REF_GUIDE.search(sent)
            kind = "outlook"
            if ref is None or not re.search(r"prior|previous|midpoint", sent, re.IGNORECASE):
                continue
        # "$0.52, compared with $0.48 a year ago, versus the consensus of $0.50": the
        # prior-period figure is not this quarter's actual.
        amounts = [(p, v) for p, v in _eps_amounts(sent) if not _PRIOR_PERIOD.match(sent, p)]
        before = [v for p, v in amounts if p < ref.start()]
        after = [v for p, v in amounts if p > ref.start()]
        if not before and len(after) >= 2:
            # "Against a consensus of $1.20, EPS came in at $1.32": reference first.
            before, after = after[1:2], after[:1]
        if not before or not after:
            continue
        s.eps_actual, s.eps_reference, s.eps_reference_kind = before[-1], after[0], kind
        s.eps_surprise_pct = round(
            100 * (s.eps_actual - s.eps_reference) / max(abs(s.eps_reference), 0.10), 1
        )
        return


_PRIOR_PERIOD = re.compile(  # matched at the amount: "$0.48 a year ago", "$0.48 in the prior year"
    r"\S*[^.;]{0,30}?\b(?:a year (?:ago|earlier)|year-ago|prior[- ]year|last year|"
    r"(?:the )?same (?:quarter|period) (?:of |in )?(?:last|the prior|the previous)|"
    r"prior[- ]period)\b",
    re.I,
)


def _revenue(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        if "|" in sent or not _REV_WORDS.search(sent):
            continue
        ref = _REF_CONS.search(sent)
        if ref is None:
            continue
        before = [m for m in MONEY_RE.finditer(sent) if m.start() < ref.start()]
        after = [m for m in MONEY_RE.finditer(sent) if m.start() > ref.start()]
        before = [m for m in before if not EPS_RE.fullmatch(m.group(0))]
        if not before or not after:
            continue
        s.revenue, s.revenue_reference = _money_value(before[0]), _money_value(after[0])
        if s.revenue_reference:
            s.revenue_surprise_pct = round(100 * (s.revenue / s.revenue_reference - 1), 1)
        return


_GUIDE_CTX = re.compile(
    r"\b(?:outlook|guidance|forecast)\b|now expects|now anticipates", re.IGNORECASE
)
_UP = re.compile(
    r"\b(?:rais(?:e|es|ed|ing)|increas(?:e|es|ed|ing)|lift(?:s|ed)?|boost(?:s|ed)?|"
    r"upgrad(?:e|es|ed))\b",
    re.IGNORECASE,
)
_DOWN = re.compile(
    r"\b(?:lower(?:s|ed|ing)?|reduc(?:e|es|ed|ing)|cut(?:s|ting)?|downgrad(?:e|es|ed)|"
    r"withdr(?:aw|aws|ew))\b",
    re.IGNORECASE,
)
_SAME = re.compile(r"\b(?:reaffirm\w*|maintain\w*|reiterat\w*|unchanged|confirm\w*)\b", re.I)
_PREV = re.compile(r"\b(?:previous\w*|prior|from)\b", re.IGNORECASE)
# "raised its full-year guidance": the verb acts on the company's own guidance directly.
_OWN_GUIDE = re.compile(
    r"\b\w+\s+(?:its|our)\s+(?:[\w-]+\s+){0,3}(?:guidance|outlook|forecast)\b", re.IGNORECASE
)


def _guidance(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        if not _GUIDE_CTX.search(sent) or _EPS_WORDS.search(sent) and _REF_CONS.search(sent):
            continue
        if not re.search(r"fiscal|full[- ]year|\b(?:19|20)\d\d\b|quarter|annual", sent, re.I):
            continue  # the company's own outlook names a period ...
        measure = re.search(r"revenue|sales|earnings|EPS|per share|income|margin", sent, re.I)
        if not measure and not RANGE_RE.search(sent) and not _OWN_GUIDE.search(sent):
            continue  # ... and a financial measure ("outlook for the housing market" is neither)
        ranges = list(RANGE_RE.finditer(sent))
        prev = _PREV.search(sent)
        if len(ranges) >= 2 and prev:
            # Compare midpoints: the range after "previously"/"prior"/"from" is the old one.
            old = [r for r in ranges if r.start() > prev.start()]
            new = [r for r in ranges if r.start() < prev.start()]
            if not old and prev.start() > ranges[1].end():
                # "... of $1.0 billion to $1.1 billion, compared to $1.2 billion to $1.3
                # billion previously": a trailing "previously" marks the later range as old.
                new, old = ranges[:1], ranges[1:2]
            if old and new:
                mid_new = sum(parse_money(new[-1].group(i)) or 0 for i in (1, 2)) / 2
                mid_old = sum(parse_money(old[0].group(i)) or 0 for i in (1, 2)) / 2
                if mid_new > mid_old * 1.001:
                    s.guidance = "raised"
                elif mid_new < mid_old * 0.999:
                    s.guidance = "lowered"
                else:
                    s.guidance = "reaffirmed"
                return
        if re.search(r"\b(?:did|does|will) not (?:change|revise|update)\b", sent, re.I):
            s.guidance = "reaffirmed"
            return
        verbs = ((_DOWN, "lowered"), (_UP, "raised"), (_SAME, "reaffirmed"))
        # The verbs acting on "its ... outlook" decide ("raised its outlook, citing lower costs"
        # is a raise), before any other verb the sentence holds; among several ("reaffirms its
        # sales outlook and lowers its EPS guidance") lowered > raised > reaffirmed.
        own = {
            lab
            for m in _OWN_GUIDE.finditer(sent)
            if not _negated(sent, m.start())
            for rx, lab in verbs
            if rx.fullmatch(m.group(0).split()[0])
        }
        label = next((lab for _, lab in verbs if lab in own), None)
        if label:
            s.guidance = label
            return
        for rx, label in verbs:
            m = rx.search(sent)
            if m and not _negated(sent, m.start()):
                s.guidance = label
                return


_ROLE_RE = re.compile(
    r"Chief Executive Officer|\bCEO\b|Chief Financial Officer|\bCFO\b|Chief Operating Officer|"
    r"\bCOO\b|General Counsel|Chief Technology Officer|Chief Accounting Officer|"
    r"Executive Vice President|\bPresident\b",
    re.IGNORECASE,
)
_DEPART_RE = [
    ("retirement", re.compile(r"\bretir(?:e|es|ed|ing|ement)\b", re.I)),
    (
        "termination",
        re.compile(r"\bterminat(?:e|ed|ion)\b|\bremov(?:e|ed|al)\b|\bdismiss|relieved of", re.I),
    ),
    (
        "resignation",
        re.compile(
            r"\bresign(?:s|ed|ation)?\b|\bstep(?:s|ped|ping)? down\b|"
            r"\bleav(?:e|es|ing) the company\b",
            re.I,
        ),
    ),
]
_VERB_FORM = re.compile(
    r"\b(?:resigned|retired|will retire|to retire|to resign|step down|stepping down|"
    r"terminated)\b",
    re.IGNORECASE,
)
_POOR = re.compile(
    r"disappointing|poor (?:financial )?performance|missed (?:targets|expectations)|"
    r"turn (?:the business )?around|underperform",
    re.IGNORECASE,
)


# An appointment ("appointed", "named", "elected X"); "has elected to retire" is a choice, not one.
_APPOINTED = re.compile(r"\bappoint\w*|\bpromot\w*|\belect(?:ed|s)?\b(?!\s+to\b)|\bnamed\b", re.I)


def _role_of(text: str) -> str | None:
    m = _ROLE_RE.search(text)
    if m is None:
        return None
    t = m.group(0).lower()
    if t in ("chief executive officer", "ceo"):
        return "CEO"
    if t in ("chief financial officer", "cfo"):
        return "CFO"
    # A joint title names its senior part last: "President and Chief Executive Officer" -> CEO,
    # "Executive Vice President and Chief Financial Officer" -> CFO.
    rest = _ROLE_RE.search(text, m.end())
    return _role_of(text[m.end() :]) if rest and rest.start() - m.end() < 6 else "other"


# A speaker's title in apposition ("..., Paul Ricci, CEO, Nuance, commented"): not the role of the
# officer the sentence is about.
_SPEAKER_ROLE = re.compile(
    r"(?<=, )(?:" + _ROLE_RE.pattern + r")(?:, (?-i:[A-Z])[\w.&]*){0,3},? "
    r"(?:commented|said|says|stated|added|remarked)[,:]? *[\"\u201c]",
    re.IGNORECASE,
)


def _departures(s: Signals, sents: list[str]) -> None:
    seen: dict[str, Departure] = {}
    poor = any(_POOR.search(x) for x in sents)
    for i, sent in enumerate(sents):
        sent = _SPEAKER_ROLE.sub('said "', sent)
        if (
            "|" in sent
            or _EARLIER.search(sent)
            or _LEGAL.search(sent)
            or re.search(r"\binterim\b|succeed|successor", sent, re.I)
            and not any(rx.search(sent) for _, rx in _DEPART_RE)
        ):
            continue
        for kind, rx in _DEPART_RE:
            m = rx.search(sent)
            if m is None or _negated(sent, m.start()):
                continue
            if (
                kind == "termination"
                and re.search(
                    r"terminat\w* (?:of|the) (?:the )?(?:agreement|credit|facility|merger|lease)",
                    sent,
                    re.I,
                )
                or re.search(
                    r"without cause|for \W?good reason|upon (?:a )?termination|post[- ]termination|"
                    r"agreement (?:also )?provides",
                    sent,
                    re.I,
                )
            ):
                continue  # contract terminations and severance terms are not departures
            # "In light of Dr. Harari's retirement, the Board appointed X, its President and
            # COO": a title after an appointment is the successor's, not the departing one's.
            after = _APPOINTED.split(sent[m.end() :], maxsplit=1)[0]
            before = _APPOINTED.split(sent[: m.start()])[-1]
            role = _role_of(after) or _role_of(before)
            if role is None and i > 0 and _VERB_FORM.search(sent):
                # "Ms. Roe will step down." after a sentence that names her role.
                if not re.search(r"\bboard\b|director", sent, re.I):
                    role = _role_of(sents[i - 1])
            if role is None or role in seen:
                continue
            seen[role] = Departure(role=role, kind=kind)
            break
    text = " ".join(sents)
    for d in seen.values():
        d.successor = bool(re.search(r"succeed|successor|interim|appointed|named", text, re.I))
        d.after_poor_results = d.kind == "termination" and poor
    s.departures = list(seen.values())


def _offerings(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        # Not _EARLIER: an offering's closing 8-K opens "As previously announced, ... priced".
        if "|" in sent or _LEGAL.search(sent):
            continue
        conv = re.search(r"convertible (?:senior )?(?:notes|debentures|bonds)", sent, re.I)
        if (
            conv
            and re.search(
                r"offering|indenture|issu|sale|sold|priced|pricing|principal amount", sent, re.I
            )
            and not re.search(
                r"exchang|repurchas|outstanding|redeem|redemption|settle|restructur|"
                r"fundamental change|holders of",
                sent,
                re.I,
            )
        ):
            if not s.convertible:
                s.convertible = True
                s.convertible_amount = parse_money(sent)
            continue
        if re.search(r"\bnotes\b|debentures|warrants? only", sent, re.I):
            continue
        shares = re.search(r"shares|common stock", sent, re.I)
        if not shares or s.equity_offering:
            continue
        priv = re.search(r"private placement", sent, re.I)
        pub = re.search(
            r"(?:underwritten|public|follow-on|secondary)\s+(?:\w+\s+)?offering|"
            r"underwriting agreement",
            sent,
            re.I,
        )
        if priv and not _negated(sent, priv.start()):
            s.equity_offering = "private"
        elif pub and not _negated(sent, pub.start()):
            s.equity_offering = "public"
        else:
            continue
        amounts = [m for m in MONEY_RE.finditer(sent) if not EPS_RE.fullmatch(m.group(0))]
        big = [_money_value(m) for m in amounts if _money_value(m) >= 1]
        s.offering_amount = max(big) if big else None


def _buyback(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        m = re.search(
            r"(?:share|stock) (?:repurchase|buyback)|repurchase of up to|"
            r"repurchase up to|buyback program|repurchase program",
            sent,
            re.I,
        )
        if m and re.search(r"authori[sz]|approv|announc", sent, re.I):
            if _negated(sent, m.start()):
                continue
            s.buyback = True
            s.buyback_amount = parse_money(sent[m.start() - 60 if m.start() > 60 else 0 :])
            return


# Agreement and indenture language ("(iii) declare or pay any dividend", "shall", "WHEREAS"):
# a clause about what a party may do, not an event the filing reports.
_LEGAL = re.compile(
    r"\bany dividends?\b|declare or pay|\bshall\b|\bWHEREAS\b|if at any time|"
    r"registrable|\((?:i|ii|iii|iv|v|vi)\)",
    re.I,
)
# A dividend paid in shares (a stock split by another name, a spin-off): not a cash payout.
_NON_CASH = re.compile(
    r"stock dividend|pro rata dividend|spin-?off|dividend of [^.;]{0,40}\b(?:common stock|shares)\b",
    re.I,
)
# An earlier event the filing recalls: "As previously disclosed, ... stepped down", or news
# "announced in a current report on Form 8-K that was filed with the SEC on August 22, 2011"
# (this filing calls itself "this Current Report on Form 8-K").
_EARLIER = re.compile(
    r"\bas (?:previously|earlier) (?:reported|disclosed|announced)\b|"
    r"\b(?:a|the|its) (?:current report on )?Form 8-K,? (?:that was |which was )?filed\b",
    re.I,
)


def _dividend(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        if not re.search(r"\bdividends?\b", sent, re.I) or re.search(
            r"dividend equivalent|dividend reinvestment|preferred", sent, re.I
        ):
            continue
        if not re.search(r"declar|approv|board|per share|quarterly", sent, re.I) or re.search(
            r"cannot|may not|restrict|prohibit|without the prior|covenant", sent, re.I
        ):
            continue
        if _LEGAL.search(sent) or _NON_CASH.search(sent):
            continue
        pos = re.search(r"\bdividends?\b", sent, re.I).start()
        low = sent[max(0, pos - 120) : pos + 160].lower()  # the words around "dividend"
        if re.search(r"\bsuspen(?:d|ds|ded|sion)\b|\beliminat|\bomit", low):
            s.dividend_change = "suspend"
        elif re.search(r"\binitiat|first-ever|first quarterly dividend|inaugural", low):
            s.dividend_change = "initiate"
        elif re.search(r"\b(?:reduc|decreas|cut\b|lower)", low):
            s.dividend_change = "cut"
        elif re.search(r"\b(?:increas|rais|higher)", low):
            s.dividend_change = "raise"
        elif re.search(r"declar|regular|unchanged|(?:quarterly|cash) dividend", low):
            s.dividend_change = "regular"
        else:
            continue
        return


def _simple_flags(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        if "|" in sent:
            continue
        m = re.search(r"impairment (?:charge|loss|of)", sent, re.I)
        nongaap = re.search(r"exclud|non-gaap|adjusted", sent, re.I)
        if m and not _negated(sent, m.start()) and not s.impairment and not nongaap:
            if re.search(r"record|recogni[sz]|conclud|required|determin|expect", sent, re.I):
                s.impairment = True
                s.impairment_amount = parse_money(sent[m.start() :])
        m = re.search(
            r"restructuring (?:plan|charges?|program|actions?|costs)|reduction (?:of|in) "
            r"(?:the Company's |its |our )?(?:global )?workforce|reorganization plan that will "
            r"eliminate|eliminate approximately \d+% of its",
            sent,
            re.I,
        )
        if (
            m
            and not _negated(sent, m.start())
            and not re.search(r"exclud|excluding|adjust|non-gaap", sent, re.I)
            and re.search(
                r"approv|announc|commit|initiat|implement|adopt|undertak|embark|expects? to "
                r"(?:incur|record)|will (?:reduce|eliminate)",
                sent,
                re.I,
            )
        ):
            s.restructuring = True
        m = re.search(
            r"should no longer be relied upon|will be restated|intends? to restate|"
            r"restate (?:its|the|our) previously issued|restatement of (?:its|the|our) "
            r"previously issued",
            sent,
            re.I,
        )
        if m and not _negated(sent, m.start()):
            s.restatement = True
        if re.search(
            r"(?:notice|notification|letter)\b.{0,200}(?:listing qualifications|continued "
            r"listing|delist)|does not comply with the continued listing|not in compliance with "
            r"(?:the )?(?:\w+ )?(?:continued )?listing",
            sent,
            re.I,
        ):
            s.delisting_notice = True
        m = re.search(
            r"voluntary petitions? for relief|chapter 11|bankruptcy code|bankruptcy protection",
            sent,
            re.I,
        )
        if m and re.search(r"\bfiled|\bcommenced|\bfiling\b", sent, re.I):
            if not re.search(
                r"\bnot\b[^.]{0,40}\bfile|no intention|emerg|confirm(?:ed|ation|ing)|"
                r"effective date of the plan|had filed",
                sent,
                re.I,
            ) and not _EARLIER.search(sent):
                s.bankruptcy = True


def _contract(s: Signals, sents: list[str]) -> None:
    for sent in sents:
        rev = re.search(
            r"total revenue of (\$[^ ]+(?:\s*(?:billion|million|bn|m)\b)?) for its most recent "
            r"fiscal year|annual revenue of (\$[^ ]+(?:\s*(?:billion|million|bn|m)\b)?)",
            sent,
            re.I,
        )
        if rev:
            s.company_revenue = parse_money(rev.group(0))
        if s.contract_value is not None or not re.search(r"contract|agreement|award", sent, re.I):
            continue
        m = re.search(
            r"(?:valued at|contract value of|expected to generate revenue of|worth)"
            r"\s+(?:approximately |up to |about )?(\$\s?\d[\d,]*(?:\.\d+)?(?:\s*(?:billion|"
            r"million|bn|mm|m|b)\b)?)",
            sent,
            re.I,
        )
        if m and not re.search(
            r"credit|loan|indenture|notes\b|option|warrant|equity award|grant|net worth|"
            r"per share|shares",
            sent,
            re.I,
        ):
            s.contract_value = parse_money(m.group(1))
    if s.contract_value is not None and s.company_revenue:
        s.contract_rel_revenue = s.contract_value / s.company_revenue


def extract_signals(text: str) -> Signals:
    """All signals in one filing's text (main document and exhibits concatenated)."""
    sents = sentences(text)
    s = Signals()
    _eps(s, sents)
    _revenue(s, sents)
    _guidance(s, sents)
    s.preannounced = any(
        re.search(r"preliminary (?:results|estimates)|pre-announced", x, re.I) for x in sents
    )
    _offerings(s, sents)
    _departures(s, sents)
    _buyback(s, sents)
    _dividend(s, sents)
    _simple_flags(s, sents)
    _contract(s, sents)
    return s


# ---------------------------------------------------------------------------------------------
# Score.

_DEPART_SCORE = {
    ("CEO", "resignation"): -0.025,
    ("CFO", "resignation"): -0.015,
    ("CEO", "termination"): -0.01,
    ("CFO", "termination"): -0.008,
}
_DIV_SCORE = {"raise": 0.01, "initiate": 0.025, "cut": -0.04, "suspend": -0.05, "regular": 0.0}


def signal_score(s: Signals) -> float:
    """Expected direction (and rough size) of the abnormal return implied by the signals."""
    score = 0.0
    if s.eps_surprise_pct is not None:
        eff = 0.04 * math.tanh(s.eps_surprise_pct / 10.0)
        score += eff * (0.3 if s.preannounced else 1.0)
    if s.revenue_surprise_pct is not None:
        score += 0.01 * math.tanh(s.revenue_surprise_pct / 3.0)
    score += {"raised": 0.02, "lowered": -0.03}.get(s.guidance or "", 0.0)
    score += {"public": -0.025, "private": 0.005}.get(s.equity_offering or "", 0.0)
    score += -0.02 if s.convertible else 0.0
    for d in s.departures:
        base = _DEPART_SCORE.get((d.role, d.kind), 0.0)
        score += 0.012 if d.after_poor_results and d.role == "CEO" else base
    score += 0.025 if s.buyback else 0.0
    score += _DIV_SCORE.get(s.dividend_change or "", 0.0)
    score += -0.015 if s.impairment else 0.0
    score += -0.005 if s.restructuring else 0.0
    score += -0.08 if s.restatement else 0.0
    score += -0.04 if s.delisting_notice else 0.0
    score += -0.2 if s.bankruptcy else 0.0
    if s.contract_value is not None:
        rel = s.contract_rel_revenue
        score += 0.04 * math.tanh(rel / 0.2) if rel is not None else 0.005
    return score
