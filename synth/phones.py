"""Phone numbers: true numbers kept as (kind, national digits), written in many styles.

The truth stores E.164 ("+8613800138000"); source systems store whatever a
person typed ("+86 138-0013-8000", "13800138000", "(+86) 138 0013 8000",
"0086 138 0013 8000"). A kind fixes the country code, how the national number
is grouped, and the trunk prefix used in national style.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PhoneKind:
    name: str
    country_code: str
    groups: tuple[int, ...]
    trunk: str
    prefixes: tuple[str, ...]  # leading digits of the national number

    @property
    def length(self) -> int:
        return sum(self.groups)


_CN_MOBILE = tuple(
    f"1{d}" for d in (
        "30", "31", "32", "33", "35", "36", "37", "38", "39", "50", "51", "52", "55", "56",
        "58", "59", "76", "77", "80", "81", "82", "83", "85", "86", "87", "88", "89", "98",
    )
)
KINDS: tuple[PhoneKind, ...] = (
    PhoneKind("cn_mobile", "86", (3, 4, 4), "", _CN_MOBILE),
    PhoneKind("cn_landline", "86", (2, 4, 4), "0", ("216", "215", "108", "105", "203", "228")),
    PhoneKind("nanp", "1", (3, 3, 4), "", ("2125", "4153", "3127", "6172", "2064", "5128")),
    PhoneKind("uk_mobile", "44", (4, 6), "0", ("77", "78", "79", "74")),
    PhoneKind("uk_landline", "44", (2, 4, 4), "0", ("203", "207", "208")),
    PhoneKind("de_mobile", "49", (3, 8), "0", ("1512", "1523", "1575", "1601", "1763")),
    PhoneKind("de_landline", "49", (2, 4, 4), "0", ("302", "894", "695", "403")),
    PhoneKind("sg_mobile", "65", (4, 4), "", ("8", "9")),
    PhoneKind("sg_landline", "65", (4, 4), "", ("6",)),
)
KIND_INDEX = {kind.name: i for i, kind in enumerate(KINDS)}
STYLES = ("e164", "spaced", "dashed", "national", "double_zero", "bracketed", "national_dashed")


def _random_digits(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    if length <= 0 or n == 0:
        return np.full(n, "", dtype=object)
    return np.char.zfill(rng.integers(0, 10**length, n).astype(str), length).astype(object)


def draw_nationals(rng: np.random.Generator, kinds: np.ndarray) -> np.ndarray:
    """A national number (digits only) for each row's kind."""
    out = np.empty(kinds.size, dtype=object)
    for k, kind in enumerate(KINDS):
        rows = np.flatnonzero(kinds == k)
        prefix = np.asarray(kind.prefixes, dtype=object)[rng.integers(0, len(kind.prefixes),
                                                                       rows.size)]
        rest = _random_digits(rng, rows.size, kind.length - len(kind.prefixes[0]))
        out[rows] = prefix + rest
    return out


def draw_unique_nationals(rng: np.random.Generator, kinds: np.ndarray,
                          taken: np.ndarray | None = None) -> np.ndarray:
    """Like `draw_nationals`, redrawing until no number repeats (nor hits `taken`)."""
    nationals = draw_nationals(rng, kinds)
    taken = np.empty(0, dtype=object) if taken is None else taken
    while True:
        full = pd.Series(kinds.astype(str) + ":" + nationals.astype(str))
        clash = full.duplicated().to_numpy() | pd.Series(nationals).isin(taken).to_numpy()
        if not clash.any():
            return nationals
        nationals[clash] = draw_nationals(rng, kinds[clash])


def e164(kinds: np.ndarray, nationals: np.ndarray) -> np.ndarray:
    codes = np.array(["+" + k.country_code for k in KINDS], dtype=object)
    return codes[kinds] + nationals


def _groups(kind: PhoneKind, nationals: pd.Series) -> list[pd.Series]:
    bounds = np.cumsum((0,) + kind.groups)
    return [nationals.str[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _style(kind: PhoneKind, style: str, nationals: pd.Series) -> pd.Series:
    cc, parts = kind.country_code, _groups(kind, nationals)
    spaced = parts[0].str.cat(parts[1:], sep=" ")
    if style == "e164":
        return "+" + cc + nationals
    if style == "spaced":
        return "+" + cc + " " + spaced
    if style == "dashed":
        return "+" + cc + " " + parts[0].str.cat(parts[1:], sep="-")
    if style == "double_zero":
        return "00" + cc + " " + spaced
    if style == "bracketed":
        return "(+" + cc + ") " + spaced
    if style == "national":
        if kind.name == "nanp":
            return "(" + parts[0] + ") " + parts[1] + "-" + parts[2]
        return kind.trunk + nationals if kind.trunk == "" else kind.trunk + spaced
    if kind.name == "nanp":
        return parts[0].str.cat(parts[1:], sep=".")
    if kind.trunk == "":
        return parts[0].str.cat(parts[1:], sep="-")
    return kind.trunk + parts[0] + "-" + parts[1].str.cat(parts[2:], sep="")


def format_phones(kinds: np.ndarray, nationals: np.ndarray, styles: np.ndarray) -> np.ndarray:
    """Write each number in its row's style (an index into `STYLES`)."""
    out = np.empty(kinds.size, dtype=object)
    for k, kind in enumerate(KINDS):
        for s, style in enumerate(STYLES):
            rows = np.flatnonzero((kinds == k) & (styles == s))
            if rows.size:
                out[rows] = _style(kind, style, pd.Series(nationals[rows])).to_numpy()
    return out


# How often each style is typed: Chinese mobiles are mostly written bare, foreign
# numbers mostly in international form (a bare foreign national number is ambiguous).
_CN_STYLE_WEIGHTS = (25, 15, 10, 30, 8, 7, 5)
_FOREIGN_STYLE_WEIGHTS = (35, 25, 10, 10, 8, 7, 5)


def draw_styles(rng: np.random.Generator, kinds: np.ndarray) -> np.ndarray:
    """A typing style per row, given the number's kind."""
    china = np.array([k.country_code == "86" for k in KINDS])[kinds]
    cn = rng.choice(len(STYLES), kinds.size, p=np.divide(_CN_STYLE_WEIGHTS, 100))
    foreign = rng.choice(len(STYLES), kinds.size, p=np.divide(_FOREIGN_STYLE_WEIGHTS, 100))
    return np.where(china, cn, foreign)
