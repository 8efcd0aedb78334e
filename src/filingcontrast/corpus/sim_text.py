"""Text of simulated 8-K filings: cover page, item sections, EX-99.1 press releases, signatures.

`render_filing(co, events, date, rng, preset)` turns the facts of one filing (a list of event
dicts drawn by `simulate.py`) into `(items, main_text, exhibits)`. Every decisive fact is written
in one of several paraphrases, numbers in varied formats ($1.2 billion / $1,200 million / $1.2bn),
with distractor sentences, negations ("did not meet") and, in the realistic preset, facts that
appear only in the press release exhibit. The demo preset keeps the informative text short.

Randomness: every choice is drawn from the `numpy.random.Generator` passed in, so the text is a
pure function of the seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

ITEM_TITLES: dict[str, str] = {
    "1.01": "Entry into a Material Definitive Agreement.",
    "1.03": "Bankruptcy or Receivership.",
    "2.02": "Results of Operations and Financial Condition.",
    "2.03": "Creation of a Direct Financial Obligation or an Obligation under an Off-Balance "
    "Sheet Arrangement of a Registrant.",
    "2.05": "Costs Associated with Exit or Disposal Activities.",
    "2.06": "Material Impairments.",
    "3.01": "Notice of Delisting or Failure to Satisfy a Continued Listing Rule or Standard; "
    "Transfer of Listing.",
    "3.02": "Unregistered Sales of Equity Securities.",
    "4.02": "Non-Reliance on Previously Issued Financial Statements or a Related Audit Report or "
    "Completed Interim Review.",
    "5.02": "Departure of Directors or Certain Officers; Election of Directors; Appointment of "
    "Certain Officers; Compensatory Arrangements of Certain Officers.",
    "5.07": "Submission of Matters to a Vote of Security Holders.",
    "7.01": "Regulation FD Disclosure.",
    "8.01": "Other Events.",
    "9.01": "Financial Statements and Exhibits.",
}
ITEM_ORDER = sorted(ITEM_TITLES, key=lambda k: tuple(int(x) for x in k.split(".")))

FEMALE_FIRST = frozenset(
    ["Mary", "Linda", "Susan", "Karen", "Laura", "Emily", "Sarah", "Michelle", "Anna", "Julia"]
)
ROLE_TITLES = {"CEO": "Chief Executive Officer", "CFO": "Chief Financial Officer"}


@dataclass
class Company:
    """A simulated registrant (what the cover page and the press release need)."""

    cik: str
    ticker: str
    name: str
    sector: str
    size: str
    state: str
    file_number: str
    irs_id: str
    address: str
    city: str
    phone: str
    exchange: str
    revenue_m: float
    """Annual revenue in $ millions."""
    market_cap_m: float
    """Market capitalisation in $ millions."""
    officers: dict[str, str]
    """Role ("CEO", "CFO", ...) -> current holder's name."""


class Picker:
    """Draws paraphrases and numbers from one Generator (keeps call sites short)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def one(self, options: list[str] | tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)


def fmt_date(d: dt.date) -> str:
    return f"{d:%B} {d.day}, {d.year}"


def fmt_money(m: float, pk: Picker, allow_short: bool = True, precise: bool = False) -> str:
    """$ millions in one of the ways filings write amounts (`precise`: keep 0.1 million)."""
    if precise:
        return pk.one([f"${m:,.1f} million", f"${m * 1e6:,.0f}"] + ([f"${m:,.1f}m"] * allow_short))
    if m >= 1000:
        b = m / 1000
        opts = [f"${b:.1f} billion", f"${m:,.0f} million", f"${b:.2f} billion"]
        if allow_short:
            opts.append(f"${b:.1f}bn")
        return pk.one(opts)
    if m >= 1:
        opts = [f"${m:,.0f} million", f"${m:,.1f} million", f"${m * 1e6:,.0f}"]
        if allow_short:
            opts.append(f"${m:,.0f}m")
        return pk.one(opts)
    return f"${m * 1e6:,.0f}"


def _range_money(m: float, pk: Picker) -> str:
    """Guidance bounds: precise enough that old and new ranges never print the same."""
    if m >= 1000:
        return pk.one([f"${m / 1000:.2f} billion", f"${m:,.0f} million"])
    return pk.one([f"${m:,.0f} million", f"${m:,.1f} million"])


def fmt_eps(x: float) -> str:
    """EPS amount in prose; a loss as "a loss of $0.12" (tables use `fmt_table_eps`)."""
    return f"${x:.2f}" if x >= 0 else f"a loss of ${-x:.2f}"


def fmt_table_eps(x: float) -> str:
    return f"${x:.2f}" if x >= 0 else f"$({-x:.2f})"


# ---------------------------------------------------------------------------------------------
# Boilerplate.


def cover_page(co: Company, date: dt.date) -> str:
    box = "\u2610"
    return (
        "UNITED STATES\nSECURITIES AND EXCHANGE COMMISSION\nWashington, D.C. 20549\n\n"
        "FORM 8-K\n\nCURRENT REPORT\nPursuant to Section 13 or 15(d) of the "
        "Securities Exchange Act of 1934\n\n"
        f"Date of Report (Date of earliest event reported): {fmt_date(date)}\n\n"
        f"{co.name.upper()}\n(Exact name of registrant as specified in its charter)\n\n"
        f"{co.state}\n(State or other jurisdiction of incorporation)\n"
        f"{co.file_number}\n(Commission File Number)\n"
        f"{co.irs_id}\n(I.R.S. Employer Identification No.)\n\n"
        f"{co.address}\n(Address of principal executive offices) (Zip Code)\n\n"
        f"Registrant's telephone number, including area code: {co.phone}\n\n"
        "Not Applicable\n(Former name or former address, if changed since last report)\n\n"
        "Check the appropriate box below if the Form 8-K filing is intended to simultaneously "
        "satisfy the filing obligation of the registrant under any of the following provisions:\n"
        f"{box} Written communications pursuant to Rule 425 under the Securities Act "
        "(17 CFR 230.425)\n"
        f"{box} Soliciting material pursuant to Rule 14a-12 under the Exchange Act "
        "(17 CFR 240.14a-12)\n"
        f"{box} Pre-commencement communications pursuant to Rule 14d-2(b) under the Exchange "
        "Act (17 CFR 240.14d-2(b))\n"
        f"{box} Pre-commencement communications pursuant to Rule 13e-4(c) under the Exchange "
        "Act (17 CFR 240.13e-4(c))\n\n"
        "Securities registered pursuant to Section 12(b) of the Act:\n"
        "Title of each class | Trading Symbol(s) | Name of each exchange on which registered\n"
        f"Common Stock, $0.001 par value per share | {co.ticker} | {co.exchange}\n\n"
        "Indicate by check mark whether the registrant is an emerging growth company as defined "
        "in Rule 405 of the Securities Act of 1933 or Rule 12b-2 of the Securities Exchange Act "
        f"of 1934.\nEmerging growth company {box}\n"
    )


def signature_block(co: Company, date: dt.date) -> str:
    signer = co.officers.get("CFO", co.officers["CEO"])
    title = "Chief Financial Officer" if "CFO" in co.officers else "Chief Executive Officer"
    return (
        "SIGNATURES\n\nPursuant to the requirements of the Securities Exchange Act of 1934, the "
        "registrant has duly caused this report to be signed on its behalf by the undersigned "
        f"hereunto duly authorized.\n\n{co.name.upper()}\n\nDate: {fmt_date(date)}\n"
        f"By: /s/ {signer}\nName: {signer}\nTitle: {title}\n"
    )


FLS = (
    "Forward-Looking Statements\n"
    "This press release contains forward-looking statements within the meaning of the Private "
    "Securities Litigation Reform Act of 1995, including statements regarding our expected "
    'financial results, business strategy and plans. Words such as "expect," "anticipate," '
    '"believe," "plan" and "will" identify forward-looking statements. Actual results may '
    "differ materially because of risks and uncertainties, including those described in the "
    "Company's most recent Annual Report on Form 10-K. The Company undertakes no obligation to "
    "update any forward-looking statement, except as required by law."
)

FURNISHED = (
    "The information in this Item, including Exhibit 99.1, is being furnished and shall not be "
    'deemed "filed" for purposes of Section 18 of the Securities Exchange Act of 1934, as '
    "amended, or otherwise subject to the liabilities of that section, nor shall it be deemed "
    "incorporated by reference in any filing under the Securities Act of 1933."
)

DISTRACTORS = [
    "The Company continues to invest in its product roadmap and its go-to-market organization.",
    "Management will host a conference call and live webcast to discuss the results at "
    "5:00 p.m. Eastern Time today.",
    "The Company was named to a list of top workplaces for the third consecutive year.",
    "Customer retention remained consistent with historical levels.",
    "The Company ended the period with 4,210 employees worldwide.",
    "The Company does not expect the matter to have a material effect on its financial condition.",
    "A replay of the call will be available on the investor relations section of the "
    "Company's website.",
    "The Company did not record any impairment charges during the quarter.",
    "No restructuring charges were incurred in the period.",
    "The Company did not repurchase any shares during the quarter.",
    "Backlog at quarter end was $1.2bn, compared with $1.1bn a year earlier.",
]


# ---------------------------------------------------------------------------------------------
# Event renderers. Each returns a dict: items {code: body}, pr (paragraphs for EX-99.1 or []),
# headline (for the press release) and table (lines) when it has one.


def _empty() -> dict[str, Any]:
    return {"items": {}, "pr": [], "headline": "", "table": []}


def _cap(text: str) -> str:
    """Upper-case the first letter only ("GAAP diluted", not "Gaap diluted")."""
    return text[:1].upper() + text[1:]


def _eps_sentence(ev: dict[str, Any], co: Company, pk: Picker, realistic: bool) -> str:
    a, c = ev["eps"], ev["eps_ref"]
    label = pk.one(["adjusted", "non-GAAP"]) if ev["adjusted"] else "GAAP diluted"
    per = pk.one(["per diluted share", "per share"])
    amt = fmt_eps(a)
    ref = fmt_eps(c)
    if ev["ref_kind"] == "outlook":
        refp = pk.one(
            [
                f"the midpoint of the Company's prior outlook of {ref} {per}",
                f"its previously issued guidance midpoint of {ref}",
            ]
        )
    else:
        refp = pk.one(
            [
                f"the consensus estimate of {ref}",
                f"the analyst consensus of {ref}",
                f"Wall Street's average estimate of {ref}",
                f"the FactSet consensus of {ref} {per}",
            ]
        )
    if realistic and pk.chance(0.2):
        # Reference first, then the actual figure: readers must not rely on word order.
        return pk.one(
            [
                f"Against {refp}, {label} EPS came in at {amt}.",
                f"Compared with {refp}, {label} earnings per share were {amt}.",
            ]
        )
    if a > c:
        verb = pk.one(["above", "ahead of", "exceeding", "which beat", "topping"])
        return pk.one(
            [
                f"{_cap(label)} earnings were {amt} {per}, {verb} {refp}.",
                f"{_cap(label)} EPS of {amt} compared with {refp}.",
                f"The Company reported {label} earnings of {amt} {per}, {verb} {refp}.",
                f"{_cap(label)} earnings per share came in at {amt} versus {refp}.",
            ]
        )
    if a < c:
        neg = pk.one(
            [
                "below",
                "short of",
                "which did not meet",
                "missing",
                "falling short of",
            ]
        )
        return pk.one(
            [
                f"{_cap(label)} earnings were {amt} {per}, {neg} {refp}.",
                f"{_cap(label)} EPS of {amt} compared with {refp}.",
                f"{_cap(label)} earnings per share came in at {amt} versus {refp}.",
                f"The Company reported {label} earnings of {amt} {per}, {neg} {refp}.",
            ]
        )
    return pk.one(
        [
            f"{_cap(label)} earnings were {amt} {per}, in line with {refp}.",
            f"{_cap(label)} EPS of {amt} matched {refp}.",
        ]
    )


def _guidance_paragraph(ev: dict[str, Any], co: Company, pk: Picker) -> str:
    g = ev.get("guidance")
    if not g:
        return ""
    lo, hi = ev["guide_lo"], ev["guide_hi"]
    plo, phi = ev["prior_lo"], ev["prior_hi"]
    year = ev["fy"]
    rng_new = f"{_range_money(lo, pk)} to {_range_money(hi, pk)}"
    rng_old = f"{_range_money(plo, pk)} to {_range_money(phi, pk)}"
    if g == "raised":
        return pk.one(
            [
                f"The Company is raising its fiscal {year} revenue outlook to {rng_new}, up from "
                f"the prior range of {rng_old}.",
                f"{co.name} now expects full-year {year} revenue of {rng_new}, compared with its "
                f"previous outlook of {rng_old}, an increase at the midpoint.",
                f"Raised Outlook: fiscal {year} revenue is now expected to be {rng_new} "
                f"(previously {rng_old}).",
            ]
        )
    if g == "lowered":
        return pk.one(
            [
                f"The Company is lowering its fiscal {year} revenue outlook to {rng_new}, down "
                f"from the prior range of {rng_old}.",
                f"{co.name} now expects full-year {year} revenue of {rng_new}, compared with its "
                f"previous outlook of {rng_old}, reflecting softer demand.",
                f"Updated Outlook: the Company reduced its fiscal {year} revenue guidance to "
                f"{rng_new} (previously {rng_old}).",
            ]
        )
    return pk.one(
        [
            f"The Company reaffirmed its fiscal {year} revenue outlook of {rng_old}.",
            f"{co.name} is maintaining its full-year {year} revenue guidance of {rng_old}.",
            f"Outlook: fiscal {year} revenue guidance of {rng_old} is unchanged.",
            f"The Company did not change its fiscal {year} revenue outlook of {rng_old}.",
        ]
    )


def render_earnings(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    q = ev["quarter"]
    if realistic:
        out["items"]["2.02"] = pk.one(
            [
                f'On {fmt_date(date)}, {co.name} (the "Company") issued a press release '
                f"announcing its financial results for the {q}. A copy of the press release is "
                "furnished as Exhibit 99.1 to this Current Report on Form 8-K.",
                f"On {fmt_date(date)}, the Company reported results for the {q}. The full text "
                "of the press release is attached hereto as Exhibit 99.1 and incorporated by "
                "reference.",
            ]
        ) + ("\n" + FURNISHED)
    else:
        out["items"]["2.02"] = (
            f"On {fmt_date(date)}, the Company issued a press release with its results for the "
            f"{q} (Exhibit 99.1)."
        )
    verb = "Reports" if not realistic else pk.one(["Reports", "Announces", "Posts"])
    out["headline"] = f"{co.name} {verb} Results for the {q.title()}"
    rev, rref = ev["revenue"], ev["revenue_ref"]
    if realistic:
        growth = ev["revenue_growth"]
        rev_s = pk.one(
            [
                f"Revenue was {fmt_money(rev, pk, precise=True)}, "
                f"{'up' if growth >= 0 else 'down'} {abs(growth):.0%} year over year",
                f"Total revenue of {fmt_money(rev, pk, precise=True)} "
                f"{'increased' if growth >= 0 else 'decreased'} {abs(growth):.0%} from the "
                "prior-year period",
            ]
        )
        rel = "above" if rev > rref else ("below" if rev < rref else "in line with")
        rev_s += f", {rel} the consensus of {fmt_money(rref, pk, precise=True)}."
    else:
        rev_s = f"Revenue was ${rev:,.1f} million versus the consensus of ${rref:,.1f} million."
    paras = [_eps_sentence(ev, co, pk, realistic), rev_s]
    if ev.get("preannounced"):
        paras.insert(
            0,
            pk.one(
                [
                    "As previously announced, results are in line with the preliminary results "
                    "the Company released earlier in the quarter.",
                    "These results are consistent with the preliminary estimates the Company "
                    "pre-announced last month.",
                ]
            ),
        )
    g = _guidance_paragraph(ev, co, pk)
    if g:
        paras.append(g)
    if realistic:
        ceo = co.officers["CEO"]
        # Management tone is upbeat whatever the numbers: a distractor for keyword rules.
        paras.append(
            f'"{pk.one(["We delivered a solid quarter", "We are pleased with our execution", "Our teams executed well"])}'
            f' and remain confident in our long-term strategy," said {ceo}, Chief Executive '
            "Officer."
        )
        paras.append(pk.one(DISTRACTORS))
    label = "Adjusted diluted EPS" if ev["adjusted"] else "Diluted EPS"
    out["table"] = [
        f"(in millions, except per share data) | {q.split(' ended')[0].title()} | Consensus",
        f"Revenue | ${rev:,.1f} | ${rref:,.1f}",
        f"{label} | {fmt_table_eps(ev['eps'])} | "
        + (fmt_table_eps(ev["eps_ref"]) if ev["ref_kind"] == "consensus" else "n/a"),
    ]
    if realistic and ev["adjusted"]:
        out["table"].insert(2, f"GAAP diluted EPS | {fmt_table_eps(ev['gaap_eps'])} | n/a")
    if not realistic:
        del out["table"][1]  # demo: the EPS row only (digits cost ~1 token each)
    out["pr"] = paras
    return out


def render_guidance_update(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["7.01"] = (
        f"On {fmt_date(date)}, the Company issued a press release updating its financial "
        "outlook. A copy is furnished as Exhibit 99.1.\n" + FURNISHED
    )
    out["headline"] = f"{co.name} Updates Fiscal {ev['fy']} Outlook"
    out["pr"] = [_guidance_paragraph(ev, co, pk)]
    if realistic:
        out["pr"].append(pk.one(DISTRACTORS))
    return out


def render_equity_offering(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    amt = fmt_money(ev["amount"], pk)
    shares = f"{ev['shares']:,}"
    px = f"${ev['price']:.2f}"
    if ev["private"]:
        out["items"]["3.02"] = pk.one(
            [
                f"On {fmt_date(date)}, the Company entered into a securities purchase agreement "
                f"with certain institutional investors for the sale of {shares} shares of its "
                f"common stock in a private placement at {px} per share, for gross proceeds of "
                f"approximately {amt}. The shares were issued in reliance on the exemption "
                "from registration provided by Section 4(a)(2) of the Securities Act.",
                f"The Company agreed to issue and sell {shares} newly issued shares of common "
                f"stock to accredited investors in a private placement priced at {px} per share "
                f"(aggregate gross proceeds of about {amt}), exempt from registration under "
                "Section 4(a)(2) of the Securities Act.",
            ]
        )
        return out
    code = "8.01" if pk.chance(0.6) else "1.01"
    out["items"][code] = pk.one(
        [
            f"On {fmt_date(date)}, the Company announced the pricing of an underwritten public "
            f"offering of {shares} shares of its common stock at a public offering price of "
            f"{px} per share. Gross proceeds are expected to be approximately {amt}.",
            f"On {fmt_date(date)}, the Company entered into an underwriting agreement relating "
            f"to the issuance and sale of {shares} shares of common stock in a public offering "
            f"at {px} per share, for gross proceeds of approximately {amt}.",
            f"The Company priced a follow-on public offering of {shares} shares of common "
            f"stock at {px} per share; net proceeds are expected to be approximately {amt} "
            "after underwriting discounts.",
        ]
    )
    if realistic:
        out["items"][code] += " " + pk.one(
            [
                "The Company intends to use the net proceeds for general corporate purposes, "
                "including working capital.",
                "The offering is expected to close on or about the third business day after "
                "pricing, subject to customary closing conditions.",
            ]
        )
    return out


def render_convertible(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    amt = fmt_money(ev["amount"], pk)
    notes = f"{ev['coupon']:.2f}% Convertible Senior Notes due {ev['maturity']}"
    out["items"]["1.01"] = pk.one(
        [
            f"On {fmt_date(date)}, the Company entered into an indenture with U.S. Bank Trust "
            f"Company, National Association, as trustee, governing {amt} aggregate principal "
            f'amount of its {notes} (the "Notes").',
            f"On {fmt_date(date)}, the Company completed its offering of {amt} aggregate "
            f'principal amount of {notes} (the "Notes") in a private offering to qualified '
            "institutional buyers pursuant to Rule 144A.",
        ]
    )
    if realistic:
        out["items"]["1.01"] += (
            f" The Notes are convertible into cash, shares of the Company's common stock or a "
            f"combination thereof, at an initial conversion price of approximately "
            f"${ev['conv_price']:.2f} per share."
        )
        out["items"]["2.03"] = (
            "The information set forth under Item 1.01 of this Current Report on Form 8-K is "
            "incorporated herein by reference."
        )
        out["items"]["3.02"] = (
            "The Notes were sold in reliance on Section 4(a)(2) of the Securities Act; the "
            "information in Item 1.01 is incorporated herein by reference."
        )
    else:
        out["items"]["2.03"] = "The information in Item 1.01 is incorporated by reference."
    return out


def render_credit_facility(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    body = (
        f"On {fmt_date(date)}, the Company entered into an amended and restated credit "
        f"agreement providing for a {fmt_money(ev['amount'], pk)} senior unsecured revolving "
        f"credit facility maturing in {ev['maturity']}. Borrowings bear interest at SOFR plus "
        "an applicable margin. The agreement contains customary covenants and events of default."
    )
    out["items"]["1.01"] = body
    out["items"]["2.03"] = "The information set forth in Item 1.01 is incorporated by reference."
    return out


def _person_role(ev: dict[str, Any]) -> str:
    return ROLE_TITLES.get(ev["role"], ev.get("role_title", "Chief Operating Officer"))


def render_departure(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    who, role, succ = ev["person"], _person_role(ev), ev.get("successor")
    when = fmt_date(date)
    mode = ev["mode"]
    female = who.split()[0] in FEMALE_FIRST
    his, him = ("her", "her") if female else ("his", "him")
    if mode == "retirement":
        s = pk.one(
            [
                f"On {when}, {who} informed the Board of Directors of {his} decision to retire as "
                f"{role} of the Company, effective at the end of the fiscal year.",
                f"{who}, the Company's {role}, will retire from that position after a planned "
                "transition period, as part of the Company's long-standing succession plan.",
                f"On {when}, the Company announced that {who} intends to retire as {role}.",
            ]
        )
        s += " " + pk.one(
            [
                f"The Board has appointed {succ} to succeed {him} as {role}.",
                f"{succ}, currently an executive vice president, will succeed {him} as {role}.",
                f"The Board named {succ} as {his} successor.",
            ]
        )
        s += f" {his.capitalize()} retirement is not the result of any disagreement with the Company."
    elif mode == "resignation":
        s = pk.one(
            [
                f"On {when}, {who} notified the Company of {his} resignation as {role}, effective "
                "immediately.",
                f"{who} tendered {his} resignation as the Company's {role} on {when}, effective "
                "immediately.",
                f"On {when}, {who} resigned from {his} position as {role} of the Company.",
                f"{who} will step down as {role}, effective immediately, to pursue other "
                "opportunities.",
            ]
        )
        s += " " + pk.one(
            [
                "The Board has begun a search for a permanent successor and has appointed "
                f"{succ} to serve as interim {role}.",
                f"{succ} will serve as {role} on an interim basis while the Board conducts a "
                "search.",
            ]
        )
    else:  # termination, possibly after poor results
        s = pk.one(
            [
                f"On {when}, the Board of Directors terminated the employment of {who} as "
                f"{role} of the Company, effective immediately.",
                f"On {when}, the Board removed {who} from {his} position as {role}.",
                f"On {when}, {who} was relieved of {his} duties as {role} by the Board.",
                f"{who}'s employment as {role} was terminated by the Board on {when}.",
            ]
        )
        if mode == "termination_after_poor":
            s += " " + pk.one(
                [
                    "The decision follows the Company's disappointing results and the Board's "
                    "review of its strategy and operational performance.",
                    "The action follows a period of poor financial performance and missed "
                    "targets, and the Board believes new leadership is needed to turn the "
                    "business around.",
                ]
            )
        s += f" {succ} has been appointed as interim {role}."
    if realistic and pk.chance(0.5):
        s += (
            " In connection with the appointment, the Compensation Committee approved an "
            "annual base salary and a target bonus opportunity consistent with the Company's "
            "executive compensation program."
        )
    out["items"]["5.02"] = s
    return out


def render_appointment(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["5.02"] = pk.one(
        [
            f"On {fmt_date(date)}, the Board of Directors elected {ev['person']} as a director, "
            "effective immediately. The Board has determined that the new director is "
            "independent under applicable listing standards.",
            f"On {fmt_date(date)}, the Compensation Committee approved annual cash bonuses for "
            "the Company's named executive officers and base salary increases for the coming "
            "year.",
        ]
    )
    return out


def render_buyback(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    amt = fmt_money(ev["amount"], pk)
    s = pk.one(
        [
            f"On {fmt_date(date)}, the Board of Directors authorized a new share repurchase "
            f"program under which the Company may repurchase up to {amt} of its outstanding "
            "common stock.",
            f"The Company announced that its Board approved a stock buyback program of up to "
            f"{amt} of common stock.",
            f"The Board authorized the repurchase of up to {amt} of the Company's shares from "
            "time to time in open market transactions.",
        ]
    )
    if realistic:
        s += (
            " The program does not obligate the Company to acquire any particular amount of "
            "stock and may be suspended at any time."
        )
    out["items"]["8.01"] = s
    out["pr"] = [s] if realistic else []  # demo filings stay short: no duplicate release
    return out


def render_dividend(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    new, old, ch = ev["new"], ev["old"], ev["change"]
    pay = fmt_date(date + dt.timedelta(days=30))
    if ch == "raise":
        s = pk.one(
            [
                f"The Board declared a quarterly cash dividend of ${new:.2f} per share, an "
                f"increase of {new / old - 1:.0%} from the prior quarterly dividend of "
                f"${old:.2f}, payable on {pay}.",
                f"The Board of Directors approved a {new / old - 1:.0%} increase in the "
                f"quarterly dividend, to ${new:.2f} per share from ${old:.2f}.",
            ]
        )
    elif ch == "cut":
        s = pk.one(
            [
                f"The Board reduced the quarterly cash dividend to ${new:.2f} per share from "
                f"${old:.2f} to preserve liquidity.",
                f"The Board of Directors declared a quarterly dividend of ${new:.2f} per share, "
                f"a decrease from the prior quarterly dividend of ${old:.2f}.",
            ]
        )
    elif ch == "initiate":
        s = pk.one(
            [
                f"The Board approved the initiation of a quarterly cash dividend of ${new:.2f} "
                "per share, the Company's first-ever dividend, payable on " + pay + ".",
                f"The Company announced its first quarterly dividend of ${new:.2f} per share.",
            ]
        )
    elif ch == "suspend":
        s = pk.one(
            [
                "The Board of Directors suspended the Company's quarterly cash dividend in "
                "order to preserve capital.",
                f"The Board has decided to suspend the quarterly dividend (previously ${old:.2f} "
                "per share) until further notice.",
            ]
        )
    else:
        s = (
            f"The Board declared a regular quarterly cash dividend of ${new:.2f} per share, "
            f"unchanged from the prior quarter, payable on {pay}."
        )
    out["items"]["8.01"] = s
    out["pr"] = [s] if realistic else []  # demo filings stay short: no duplicate release
    return out


def render_restructuring(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["2.05"] = pk.one(
        [
            f"On {fmt_date(date)}, the Board approved a restructuring plan to reduce operating "
            f"costs, including a reduction of the Company's workforce by approximately "
            f"{ev['headcount_pct']:.0%}. The Company expects to incur pre-tax charges of "
            f"{fmt_money(ev['charge'], pk)}, primarily severance and related costs.",
            f"The Company committed to a reorganization plan that will eliminate approximately "
            f"{ev['headcount_pct']:.0%} of its positions and consolidate facilities; it expects "
            f"total restructuring charges of approximately {fmt_money(ev['charge'], pk)}.",
            f"On {fmt_date(date)}, management committed to a restructuring program that "
            f"includes closing two manufacturing sites and a reduction in its workforce of "
            f"about {ev['headcount_pct']:.0%}; related charges are estimated at "
            f"{fmt_money(ev['charge'], pk)}.",
        ]
    )
    return out


def render_impairment(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["2.06"] = (
        pk.one(
            [
                f"On {fmt_date(date)}, the Audit Committee concluded that a material non-cash "
                f"impairment charge of approximately {fmt_money(ev['charge'], pk)} is required "
                "with respect to goodwill of its reporting unit.",
                f"The Company determined that the carrying value of certain intangible assets "
                f"exceeded their fair value and expects to record an impairment charge of "
                f"{fmt_money(ev['charge'], pk)} in the current quarter.",
                f"Following its interim impairment test, the Company will recognize a non-cash "
                f"goodwill impairment charge of {fmt_money(ev['charge'], pk)}, reflecting lower "
                "projected cash flows of the acquired business.",
            ]
        )
        + " The charge is not expected to result in future cash expenditures."
    )
    return out


def render_restatement(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["4.02"] = pk.one(
        [
            f"On {fmt_date(date)}, the Audit Committee, after discussion with management and "
            f"the Company's independent registered public accounting firm, concluded that the "
            f"Company's previously issued financial statements for fiscal {ev['year']} should "
            "no longer be relied upon because of errors in revenue recognition, and that they "
            "will be restated.",
            f"The Company's previously issued consolidated financial statements for the "
            f"periods in fiscal {ev['year']} should no longer be relied upon and will be "
            "restated to correct an error in the accounting for inventory.",
            f"Management and the Audit Committee determined that the Company will need to "
            f"restate its previously issued financial statements for fiscal {ev['year']} to "
            "correct the classification of certain lease obligations; investors should no "
            "longer rely on those statements or the related audit report.",
        ]
    )
    return out


def render_delisting(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    reason = (
        "the closing bid price of the Company's common stock had been below $1.00 per share "
        "for 30 consecutive business days"
        if ev["reason"] == "bid_price"
        else "the Company had not timely filed its periodic report"
    )
    out["items"]["3.01"] = (
        f"On {fmt_date(date)}, the Company received a notice from the Listing Qualifications "
        f"Department of {co.exchange} stating that {reason}, and that the Company therefore "
        "does not comply with the continued listing requirements. "
        + pk.one(
            [
                "The Company has 180 calendar days to regain compliance.",
                "The notice has no immediate effect on the listing of the common stock.",
                "The Company intends to monitor the closing bid price and may consider a "
                "reverse stock split to regain compliance.",
            ]
        )
    )
    return out


def render_bankruptcy(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["1.03"] = (
        pk.one(
            [
                f"On {fmt_date(date)}, the Company and certain of its subsidiaries filed voluntary "
                "petitions for relief under Chapter 11 of Title 11 of the United States Code in the "
                "United States Bankruptcy Court for the District of Delaware.",
                f"On {fmt_date(date)}, the Company commenced voluntary cases under chapter 11 of "
                "the Bankruptcy Code in the United States Bankruptcy Court for the Southern "
                "District of Texas.",
                f"On {fmt_date(date)}, the Company and its domestic subsidiaries filed for "
                "bankruptcy protection under Chapter 11 in the United States Bankruptcy Court for "
                "the District of New Jersey, having entered into a restructuring support agreement "
                "with its lenders.",
            ]
        )
        + " The Company will continue to operate its business as a debtor-in-possession."
    )
    return out


def render_contract(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    amt = fmt_money(ev["value"], pk)
    yrs = ev["years"]
    s = pk.one(
        [
            f"On {fmt_date(date)}, the Company entered into a {yrs}-year supply agreement with "
            f"{ev['counterparty']} with an estimated total contract value of {amt}.",
            f"The Company was awarded a contract by {ev['counterparty']} valued at "
            f"approximately {amt} over {yrs} years.",
            f"On {fmt_date(date)}, the Company signed a multi-year agreement with "
            f"{ev['counterparty']}; the contract is expected to generate revenue of {amt} over "
            f"its {yrs}-year term.",
            f"{ev['counterparty'][0].upper()}{ev['counterparty'][1:]} selected the Company "
            f"for a {yrs}-year award worth {amt}, the largest in the Company's history.",
        ]
    )
    if realistic:
        s += (
            f" For reference, the Company reported total revenue of "
            f"{fmt_money(co.revenue_m, pk)} for its most recent fiscal year."
        )
    code = "1.01" if pk.chance(0.5) else "8.01"
    out["items"][code] = s
    return out


def render_vote(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    f, a = ev["votes_for"], ev["votes_against"]
    out["items"]["5.07"] = (
        f"The Company held its annual meeting of stockholders on {fmt_date(date)}. The "
        "stockholders elected each director nominee, ratified the appointment of the "
        "independent registered public accounting firm and approved, on an advisory basis, "
        f"executive compensation ({f:,} votes for, {a:,} votes against)."
    )
    return out


def render_presentation(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["7.01"] = (
        f"On {fmt_date(date)}, members of management will present at an investor conference. "
        "A copy of the presentation materials is furnished as Exhibit 99.1.\n" + FURNISHED
    )
    out["headline"] = f"{co.name} Investor Presentation"
    out["pr"] = [pk.one(DISTRACTORS), pk.one(DISTRACTORS)]
    return out


def render_other(
    ev: dict[str, Any], co: Company, date: dt.date, pk: Picker, realistic: bool
) -> dict[str, Any]:
    out = _empty()
    out["items"]["8.01"] = pk.one(
        [
            f"On {fmt_date(date)}, the Company announced that it will relocate its corporate "
            "headquarters within the same metropolitan area later this year.",
            f"On {fmt_date(date)}, the Company settled a previously disclosed commercial "
            "dispute; the settlement did not have a material impact on its results.",
            f"On {fmt_date(date)}, the Company announced the date of its next quarterly earnings "
            "release and conference call.",
        ]
    )
    return out


RENDERERS = {
    "earnings": render_earnings,
    "guidance_update": render_guidance_update,
    "equity_offering": render_equity_offering,
    "convertible": render_convertible,
    "credit_facility": render_credit_facility,
    "departure": render_departure,
    "appointment": render_appointment,
    "buyback": render_buyback,
    "dividend": render_dividend,
    "restructuring": render_restructuring,
    "impairment": render_impairment,
    "restatement": render_restatement,
    "delisting": render_delisting,
    "bankruptcy": render_bankruptcy,
    "contract": render_contract,
    "vote": render_vote,
    "presentation": render_presentation,
    "other": render_other,
}


def _exchange_code(co: Company) -> str:
    return "NASDAQ" if "Nasdaq" in co.exchange else "NYSE"


def _press_release(
    co: Company, date: dt.date, parts: list[dict[str, Any]], pk: Picker, realistic: bool
) -> str:
    headline = next((p["headline"] for p in parts if p["headline"]), f"{co.name} Announcement")
    lines = ["Exhibit 99.1", "", headline, ""]
    if realistic:
        lines.append(
            f"{co.city} -- {fmt_date(date)} -- {co.name} ({_exchange_code(co)}: {co.ticker}) "
            "today announced the following."
        )
    for p in parts:
        lines.extend(x for x in p["pr"] if x)
        if p["table"]:
            lines.append("")
            lines.extend(p["table"])
            lines.append("")
    if realistic:
        lines.append(
            f"About {co.name}\n{co.name} is a {co.sector.lower()} company headquartered in "
            f"{co.city}."
        )
        lines.append(FLS)
        lines.append(f"Investor Contact: investors@{co.ticker.lower()}.example.com")
    return "\n".join(lines) + "\n"


def render_filing(
    co: Company,
    events: list[dict[str, Any]],
    date: dt.date,
    rng: np.random.Generator,
    preset: str,
) -> tuple[list[str], str, list[tuple[str, str]]]:
    """(items, main document text, [(exhibit_type, exhibit text)]) for one filing.

    Events flagged `exhibit_only` contribute only to the press release (realistic preset: the
    signal is in EX-99.1, not in the item text). The press release is written when any event
    has press-release paragraphs.
    """
    pk = Picker(rng)
    realistic = preset == "realistic"
    parts = [RENDERERS[ev["kind"]](ev, co, date, pk, realistic) for ev in events]
    sections: dict[str, list[str]] = {}
    for ev, part in zip(events, parts):
        if ev.get("exhibit_only"):
            if not part["pr"]:  # an exhibit-only event needs its text in the release
                part["pr"] = list(part["items"].values())
            continue
        for code, body in part["items"].items():
            sections.setdefault(code, []).append(body)
    has_pr = any(p["pr"] for p in parts) or any(p["table"] for p in parts)
    exhibits: list[tuple[str, str]] = []
    if has_pr:
        exhibits.append(("EX-99.1", _press_release(co, date, parts, pk, realistic)))
        if not ({"2.02", "7.01"} & set(sections)):
            body = (
                "On the date of this report, the Company issued a press release, a copy of "
                "which is furnished as Exhibit 99.1."
            )
            sections.setdefault("7.01", []).append(body)
        sections["9.01"] = [
            "(d) Exhibits.\nExhibit No. | Description\n99.1 | Press release dated "
            f"{fmt_date(date)}\n104 | Cover Page Interactive Data File (embedded within the "
            "Inline XBRL document)"
        ]
    items = [c for c in ITEM_ORDER if c in sections]
    body = [cover_page(co, date)]
    for code in items:
        body.append(f"Item {code} {ITEM_TITLES[code]}\n\n" + "\n\n".join(sections[code]))
    body.append(signature_block(co, date))
    return items, "\n\n".join(body), exhibits
