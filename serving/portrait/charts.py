"""The portrait's charts as SVG geometry: the reasons' waterfall, the fit x interest chart and
the score history.

Each chart is plain data (pixel positions, labels, colours) that the page template draws.

**Waterfall**, in the units on the page where the model tells them (LightGBM champions):
points of the 0-100 score, from the average lead's score, one bar per reason (a behaviour),
a bar for the behaviours not listed, to this lead's score. Otherwise in log-odds: from the
final log-odds minus the shown reasons ("baseline and all other factors", which also holds
the calibration's shift) to logit(probability), the axis reading as the calibrated chance.
Rule models chart their rule points from zero. Labels are wrapped, never cut: a row is as
tall as its words.

**Fit x interest**: the score's two axes (leadscore/scoring/parts.py), each 0-100 in score
points, with score = fit + interest - the average lead's score: the lines of equal score, and so
the tiers' score thresholds, are diagonals; their fit and interest thresholds are verticals and
horizontals. Each tier's region is where its conditions hold and no earlier tier's do, so the
lead's marker (at its fit and interest) lies in the region of its tier; the lead's path over its
score history leads to it.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from leadscore.scoring.spec import DEFAULT_TIER_COLOUR, TierTable
from leadscore.serving.portrait.schemas import ScorePoint
from leadscore.serving.schemas import Reason, ScoreResponse

R = TypeVar("R")  # a reason, or a reason with its points
UP, DOWN = "#1a9850", "#d73027"
LABEL_WIDTH, VALUE_WIDTH, ROW_HEIGHT, TOP = 410, 56, 28, 8  # the waterfall's pixels
LINE_HEIGHT, CHARS_PER_LINE = 14, 62  # a label's wrapped lines (12.5 px text in LABEL_WIDTH)
CONDITION_WORDS = {  # a tier's conditions the chart cannot draw, as a legend tells them
    "fit_score_min": "the rule points' fit share is at least {:g}%",
    "interest_score_min": "the rule points' interest share is at least {:g}%",
    "completeness_max": "the profile is at most {:.0%} complete",
}


def signed(value: float, digits: int = 1) -> str:
    """A change with its sign, '+1.2' or '-0.3', never '-0.0' or '+0.0': a change that rounds to
    nothing reads '0.0'."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def _telling(reasons: list[R], change: Callable[[R], float], digits: int) -> list[R]:
    """The reasons worth a bar: those whose change shows at the chart's precision. A reason that
    rounds to nothing would be a bar labelled '0.0' in its colour; it goes with the rest instead
    (the 'everything else' bar, or the start that holds every factor not listed)."""
    return [r for r in reasons if float(f"{change(r):.{digits}f}") != 0]


@dataclass
class Bar:
    label: str
    title: str
    kind: str  # base, up, down, total
    y: float
    x0: float
    x1: float
    value_text: str
    value_x: float
    anchor: str
    lines: list[str] = field(default_factory=list)  # the label wrapped, every word kept
    height: float = ROW_HEIGHT


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    connectors: list[tuple[float, float, float]] = field(default_factory=list)  # x, y0, y1
    ticks: list[tuple[float, str]] = field(default_factory=list)
    axis_y: float = 0
    plot: tuple[float, float] = (0, 0)
    unit: str = ""


@dataclass(frozen=True)
class _Axis:
    """The waterfall's value axis: from `lo` to `hi` in round steps, drawn over `plot` (pixels)."""

    lo: float
    hi: float
    step: float
    plot: tuple[float, float]

    @classmethod
    def spanning(cls, values: Sequence[float], plot: tuple[float, float]) -> _Axis:
        lo, hi = min(values), max(values)
        step = _nice_step(hi - lo or 1.0)
        lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        if hi - lo < 1e-9:
            lo, hi = lo - step, hi + step
        return cls(lo, hi, step, plot)

    def x(self, value: float) -> float:
        left, right = self.plot
        return round(left + (value - self.lo) / (self.hi - self.lo) * (right - left), 1)

    def ticks(self, points: bool) -> list[tuple[float, str]]:
        """One tick a step; log-odds ticks also read as the chance."""
        ticks = []
        value = self.lo
        while value <= self.hi + 1e-9:
            label = f"{value:g}" if points else f"{value:g} ({1 / (1 + math.exp(-value)):.0%})"
            ticks.append((self.x(value), label))
            value += self.step
        return ticks


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / target if span > 0 else 1
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def waterfall(score: ScoreResponse, width: int = 800) -> Chart:
    """The reasons as a horizontal waterfall: start, one bar per reason (up green, down red), final."""
    reasons = [*score.reasons_up, *score.reasons_down]
    in_points = [(r, r.points) for r in reasons if r.points is not None]
    if score.average_score is not None and len(in_points) == len(reasons):
        return _score_points_waterfall(score, score.average_score, _telling(in_points, lambda r: r[1], 1),
                                       width)
    return _model_units_waterfall(score, width)


def _score_points_waterfall(score: ScoreResponse, average: float, reasons: list[tuple[Reason, float]],
                            width: int) -> Chart:
    """From the average lead's score to this lead's, in score points; each bar in the reason's
    words (`reasons`: each with its points). The behaviours not listed (or too small to show)
    make one bar (the score's 0-100 clip ends there too)."""
    others = round(score.score - average - sum(points for _, points in reasons), 1)
    steps = [(r.label or r.text, r.text, points) for r, points in reasons]
    capped = score.score in (0, 100)  # the walk ends at the score shown, which the 0-100 clip holds
    if abs(others) >= 0.05:
        steps.append(("everything else" + (" and the 0-100 cap" if capped else ""),
                      "all behaviours and traits not listed above"
                      + (f", and the score's cap at {score.score:.0f}" if capped else ""), others))
    running = list(itertools.accumulate((points for *_, points in steps), initial=average))
    axis = _Axis.spanning([*running, 0.0], (LABEL_WIDTH + 10, width - VALUE_WIDTH))
    chart = Chart(width=width, height=0, plot=axis.plot, unit="score points")
    chart.bars.append(_marker("The average lead", "base", TOP, axis.x(running[0]), f"{running[0]:.0f}"))
    for (label, text, points), before, after in zip(steps, running, running[1:], strict=False):
        y = _next_row(chart)
        chart.bars.append(_step_bar(label, f"{text} ({signed(points)} score points)", signed(points),
                                    points, y, axis.x(before), axis.x(after), text))
        chart.connectors.append((axis.x(before), chart.bars[-2].y + 4, y + 4))
    return _finish(chart, axis, score.score, _score_label(score), f"{score.score:.0f}", points=True)


def _next_row(chart: Chart) -> float:
    """Where the next row starts: below the last one, however many lines its label took."""
    last = chart.bars[-1]
    return last.y + last.height


def _model_units_waterfall(score: ScoreResponse, width: int) -> Chart:
    points = score.model_kind == "rule_baseline"
    reasons = _telling([*score.reasons_up, *score.reasons_down], lambda r: r.impact, 0 if points else 2)
    shown = sum(r.impact for r in reasons)
    start = 0.0 if points else _logit(score.probability) - shown
    running = list(itertools.accumulate((r.impact for r in reasons), initial=start))
    axis = _Axis.spanning(running, (LABEL_WIDTH + 10, width - VALUE_WIDTH))
    chart = Chart(width=width, height=0, plot=axis.plot, unit="points" if points else "log-odds")
    start_label, end_label = _end_labels(score, points, shown)
    chart.bars.append(_marker(start_label, "base", TOP, axis.x(start), "0" if points else f"{start:.2f}"))
    for reason, before, after in zip(reasons, running, running[1:], strict=False):
        y = _next_row(chart)
        chart.bars.append(_reason_bar(reason, y, axis.x(before), axis.x(after), points, chart.unit))
        chart.connectors.append((axis.x(before), chart.bars[-2].y + 4, y + 4))
    final = running[-1]
    return _finish(chart, axis, final, end_label, f"{final:.0f}" if points else f"{final:.2f}", points)


def _finish(chart: Chart, axis: _Axis, final: float, label: str, value_text: str, points: bool) -> Chart:
    """The end of the walk, the axis and the height."""
    y = _next_row(chart)
    chart.connectors.append((axis.x(final), chart.bars[-1].y + 4, y + 4))
    chart.bars.append(_marker(label, "total", y, axis.x(final), value_text))
    chart.axis_y = _next_row(chart)
    chart.ticks = axis.ticks(points)
    chart.height = int(chart.axis_y + 34)  # the ticks, then the unit under them
    return chart


def _end_labels(score: ScoreResponse, points: bool, shown: float) -> tuple[str, str]:
    if points:
        return "No points", f"Points from these reasons: {signed(shown, 0)}"
    return "Baseline and all other factors", _score_label(score)


def _score_label(score: ScoreResponse) -> str:
    """The walk's end: the score and its chance, or, for a lead already in an opportunity (outside
    the model's population, serving/opportunities.py), no chance told as if it were a forecast."""
    if score.in_opportunity is not None:
        return f"Score {score.score:.0f} · in an opportunity: not a forecast"
    return f"Score {score.score:.0f} · {score.probability:.1%} chance"


def _marker(label: str, kind: str, y: float, x: float, value_text: str) -> Bar:
    """The start or the end of the walk: a mark at one value, its label as its title."""
    return Bar(label, label, kind, y, x, x, value_text, x + 8, "start", [label])


def _reason_bar(reason: Reason, y: float, x_from: float, x_to: float, points: bool, unit: str) -> Bar:
    impact = signed(reason.impact, 0 if points else 2)
    return _step_bar(reason.label or reason.text, f"{reason.text} ({impact} {unit})", impact, reason.impact,
                     y, x_from, x_to, reason.text)


def _step_bar(label: str, title: str, value_text: str, change: float, y: float, x_from: float,
              x_to: float, words: str) -> Bar:
    """One step, from the running total before it to the one after; at least 2 px wide. Its
    row shows `words` (the reason as a rep reads it) on as many lines as they need."""
    kind = "up" if change >= 0 else "down"
    left, right = sorted((x_from, x_to))
    right = max(right, left + 2)
    value_x, anchor = (right + 5, "start") if kind == "up" else (left - 5, "end")
    lines = textwrap.wrap(words, CHARS_PER_LINE, break_long_words=True) or [words]
    return Bar(label, title, kind, y, left, right, value_text, value_x, anchor, lines,
               max(ROW_HEIGHT, LINE_HEIGHT * len(lines) + 10))


@dataclass
class HistoryChart:
    width: int
    height: int
    points: list[dict]
    polyline: str
    grid: list[tuple[float, str]]
    xlabels: list[tuple[float, str, str]]  # x, text, text-anchor
    mql_y: float | None
    plot: tuple[float, float, float, float]  # x0, x1, y0 (top), y1 (bottom)


def history_chart(history: list[ScorePoint], mql: float | None, tier_colours: Mapping[str, str],
                  width: int = 860, height: int = 190) -> HistoryChart | None:
    """A small line chart of the score over time (0-100), each point in its tier's colour."""
    scored = [h for h in history if h.score is not None]
    if not scored:
        return None
    x0, x1, y0, y1 = 40, width - 20, 12, height - 28
    t0, t1 = scored[0].scored_at.timestamp(), scored[-1].scored_at.timestamp()

    def px(t: float) -> float:
        return round((x0 + x1) / 2 if t1 == t0 else x0 + (t - t0) / (t1 - t0) * (x1 - x0), 1)

    def py(s: float) -> float:
        return round(y1 - max(0.0, min(100.0, s)) / 100 * (y1 - y0), 1)

    xs = [px(h.scored_at.timestamp()) for h in scored]
    pts = [{"x": x, "y": py(h.score or 0), "score": h.score, "tier": h.tier,
            "colour": tier_colours.get(h.tier or "", DEFAULT_TIER_COLOUR),
            "title": f"{h.scored_at:%Y-%m-%d}: score {h.score:.0f}, {h.tier or '-'}"}
           for x, h in zip(xs, scored, strict=True)]
    picks = sorted({0, len(scored) - 1, len(scored) // 2})
    anchors = {0: "start", len(scored) - 1: "end"} if len(scored) > 1 else {}
    xlabels = [(xs[i], f"{scored[i].scored_at:%d %b %Y}", anchors.get(i, "middle")) for i in picks]
    return HistoryChart(
        width=width, height=height, points=pts, polyline=" ".join(f"{p['x']},{p['y']}" for p in pts),
        grid=[(py(s), str(s)) for s in (0, 25, 50, 75, 100)], xlabels=xlabels,
        mql_y=py(mql) if mql is not None else None, plot=(x0, x1, y0, y1))


@dataclass
class Region:
    """A tier's part of the fit x interest square: convex polygons (a tier checked after others
    is what is left of its own conditions once theirs are taken out), its colour and its words
    (the chart's legend)."""

    tier: str
    polygons: list[str]  # SVG polygon points, one string per piece
    colour: str
    label: str


@dataclass
class AxesChart:
    """The fit x interest chart: the square, the tiers' regions and their boundaries, the lead's
    path over its score history and its marker now."""

    size: int
    plot: tuple[float, float, float, float]  # x0, x1, y0 (top), y1 (bottom)
    average: float
    regions: list[Region]
    lines: list[tuple[float, float, float, float, str]]  # x1, y1, x2, y2, label: a tier's boundary
    ticks: list[tuple[float, str]]  # positions along either axis (the square is symmetric)
    path: str  # polyline points, oldest first, ending at the marker
    past: list[dict]  # each earlier point: x, y, title
    marker: dict  # x, y, fit, interest, score, title


def axes_chart(score: ScoreResponse, history: Sequence[ScorePoint], tiers: TierTable | None,
               size: int = 330) -> AxesChart | None:
    """The lead on its two axes (fit across, interest up), where the model tells them."""
    if score.fit is None or score.interest is None or score.average_score is None:
        return None
    x0, x1, y0, y1 = 38.0, size - 10.0, 10.0, size - 34.0

    def at(fit: float, interest: float) -> tuple[float, float]:
        return (round(x0 + _unit(fit) * (x1 - x0), 1), round(y1 - _unit(interest) * (y1 - y0), 1))

    regions, lines = _tier_regions(tiers, score.average_score, at)
    past = [{"x": at(h.fit, h.interest)[0], "y": at(h.fit, h.interest)[1],
             "title": f"{h.scored_at:%Y-%m-%d}: fit {h.fit:.0f}, interest {h.interest:.0f}, "
                      f"score {h.score:.0f}"}
            for h in history if h.fit is not None and h.interest is not None and h.score is not None]
    x, y = at(score.fit, score.interest)
    marker = {"x": x, "y": y, "fit": score.fit, "interest": score.interest, "score": score.score,
              "title": f"now: fit {score.fit:.0f} + interest {score.interest:.0f} - average "
                       f"{score.average_score:.0f} = score {score.score:.0f}"}
    path = " ".join(f"{p['x']},{p['y']}" for p in [*past, marker])
    return AxesChart(size, (x0, x1, y0, y1), score.average_score, regions, lines,
                     [(round(x0 + v / 100 * (x1 - x0), 1), str(v)) for v in (0, 25, 50, 75, 100)],
                     path, past, marker)


def _unit(value: float) -> float:
    return max(0.0, min(100.0, value)) / 100


Place = Callable[[float, float], tuple[float, float]]  # (fit, interest) -> the chart's pixels
Polygon = list[tuple[float, float]]  # (fit, interest) corners
Side = Callable[[float, float], float]  # >= 0 on the side of a boundary where a condition holds
SQUARE: Polygon = [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)]


def _boundary(condition: str, threshold: float, average: float) -> tuple[Side, str] | None:
    """Where a tier condition holds on the chart, and its line's label: the score's threshold is
    the diagonal fit + interest = threshold + average, fit's a vertical, interest's a horizontal.
    None for a condition the chart cannot draw (the rule shares, the profile)."""
    if condition == "score_min":
        return (lambda f, i: f + i - threshold - average), f"score {threshold:.0f}"
    if condition == "fit_min":
        return (lambda f, i: f - threshold), f"fit {threshold:.0f}"
    if condition == "interest_min":
        return (lambda f, i: i - threshold), f"interest {threshold:.0f}"
    return None


def _tier_regions(tiers: TierTable | None, average: float, at: Place
                  ) -> tuple[list[Region], list[tuple[float, float, float, float, str]]]:
    """Each tier's region, in the table's order: the part of the square where its conditions
    hold and no earlier tier's do (a point's region is the tier `tier_array` gives it), and the
    boundaries of the tiers' conditions."""
    if tiers is None:
        return [], []
    regions, lines, drawn = [], [], set()
    taken: list[list[Side]] = []
    for tier in tiers.tiers:
        sides, undrawn = [], []
        for condition, threshold in tier.when.items():
            found = _boundary(condition, threshold, average) if isinstance(threshold, int | float) else None
            if found is None:
                undrawn.append(CONDITION_WORDS.get(condition, condition).format(threshold))
                continue
            sides.append(found[0])
            if found[1] not in drawn:
                drawn.add(found[1])
                lines.extend(_line(found[0], found[1], at))
        pieces = [piece for piece in _minus([_within(SQUARE, sides)], taken) if _area(piece) > 1e-6]
        if pieces:
            label = tier.name + (f" (if {' and '.join(undrawn)}, else the next)" if undrawn else "")
            polygons = [" ".join("{},{}".format(*at(f, i)) for f, i in piece) for piece in pieces]
            colour = tiers.colours.get(tier.name, DEFAULT_TIER_COLOUR)
            regions.append(Region(tier.name, polygons, colour, label))
        if not undrawn:  # a tier the chart decides wholly takes its part from the later ones
            taken.append(sides)
    return regions, lines


def _within(polygon: Polygon, sides: list[Side]) -> Polygon:
    for side in sides:
        polygon = _half(polygon, side)
    return polygon


def _minus(pieces: list[Polygon], taken: list[list[Side]]) -> list[Polygon]:
    """The pieces without each taken convex region (the intersection of its sides): outside a
    region is outside its first side, or inside it and outside the second, and so on."""
    for sides in taken:
        left = []
        for piece in pieces:
            for k, side in enumerate(sides):
                outside = _half(_within(piece, sides[:k]), _opposite(side))
                if _area(outside) > 1e-6:
                    left.append(outside)
        pieces = left
    return pieces


def _opposite(side: Side) -> Side:
    return lambda f, i: -side(f, i)


def _area(polygon: Polygon) -> float:
    """The shoelace formula: 0 for a piece that is only a line or a point."""
    pairs = zip(polygon, polygon[1:] + polygon[:1], strict=True)
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in pairs)) / 2


def _line(side: Side, label: str, at: Place) -> list[tuple[float, float, float, float, str]]:
    """A boundary across the square: where its side is 0 (the edge of the half-plane)."""
    ends = _half(_half(SQUARE, side), lambda f, i: -side(f, i))
    ends = list(dict.fromkeys((round(f, 6), round(i, 6)) for f, i in ends))
    if len(ends) < 2:
        return []
    (fa, ia), (fb, ib) = ends[0], ends[-1]
    return [(*at(fa, ia), *at(fb, ib), label)]


def _half(polygon: list[tuple[float, float]], side: Callable[[float, float], float]
          ) -> list[tuple[float, float]]:
    """Sutherland-Hodgman against one line: keep where side(f, i) >= 0."""
    kept = []
    for a, b in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        sa, sb = side(*a), side(*b)
        if sa >= 0:
            kept.append(a)
        if (sa >= 0) != (sb >= 0):
            t = sa / (sa - sb)
            kept.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
    return kept
