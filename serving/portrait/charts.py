"""The portrait's charts as SVG geometry: the reasons' waterfall and the score history.

Each chart is plain data (pixel positions, labels, colours) that the page template draws.

**Waterfall**, in the units on the page where the model tells them (LightGBM champions):
points of the 0-100 score, from the average lead's score, one bar per reason (a behaviour),
a bar for the behaviours not listed, to this lead's score. Otherwise in log-odds: from the
final log-odds minus the shown reasons ("baseline and all other factors", which also holds
the calibration's shift) to logit(probability), the axis reading as the calibrated chance.
Rule models chart their rule points from zero.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from leadscore.scoring.spec import DEFAULT_TIER_COLOUR
from leadscore.serving.portrait.schemas import ScorePoint
from leadscore.serving.schemas import Reason, ScoreResponse

UP, DOWN = "#1a9850", "#d73027"
LABEL_WIDTH, VALUE_WIDTH, ROW_HEIGHT, TOP = 360, 70, 28, 8  # the waterfall's pixels


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


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def waterfall(score: ScoreResponse, width: int = 860) -> Chart:
    """The reasons as a horizontal waterfall: start, one bar per reason (up green, down red), final."""
    reasons = [*score.reasons_up, *score.reasons_down]
    if score.average_score is not None and all(r.points is not None for r in reasons):
        return _score_points_waterfall(score, reasons, width)
    return _model_units_waterfall(score, width)


def _score_points_waterfall(score: ScoreResponse, reasons: list[Reason], width: int) -> Chart:
    """From the average lead's score to this lead's, in score points. The behaviours not
    listed make one bar (the score's 0-100 clip ends there too)."""
    others = round(score.score - score.average_score - sum(r.points for r in reasons), 1)
    steps = [(r.label or r.text, r.text, r.points) for r in reasons]
    capped = score.score in (0, 100)  # the walk ends at the score shown, which the 0-100 clip holds
    if abs(others) >= 0.05:
        steps.append(("everything else" + (" and the 0-100 cap" if capped else ""),
                      "all behaviours and traits not listed above"
                      + (f", and the score's cap at {score.score:.0f}" if capped else ""), others))
    running = list(itertools.accumulate((points for *_, points in steps), initial=score.average_score))
    axis = _Axis.spanning([*running, 0.0], (LABEL_WIDTH + 10, width - VALUE_WIDTH))
    chart = Chart(width=width, height=0, plot=axis.plot, unit="score points")
    chart.bars.append(_marker("The average lead", "base", TOP, axis.x(running[0]), f"{running[0]:.0f}"))
    for row, ((label, title, points), before, after) in enumerate(
            zip(steps, running, running[1:], strict=False), start=1):
        y = TOP + row * ROW_HEIGHT
        chart.bars.append(_step_bar(label, f"{title} ({points:+.1f} score points)", f"{points:+.1f}",
                                    points, y, axis.x(before), axis.x(after)))
        chart.connectors.append((axis.x(before), y - ROW_HEIGHT + 4, y + 4))
    return _finish(chart, axis, len(steps), score.score, f"Score {score.score:.0f} · "
                   f"{score.probability:.1%} chance", f"{score.score:.0f}", points=True)


def _model_units_waterfall(score: ScoreResponse, width: int) -> Chart:
    points = score.model_kind == "rule_baseline"
    reasons = [*score.reasons_up, *score.reasons_down]
    shown = sum(r.impact for r in reasons)
    start = 0.0 if points else _logit(score.probability) - shown
    running = list(itertools.accumulate((r.impact for r in reasons), initial=start))
    axis = _Axis.spanning(running, (LABEL_WIDTH + 10, width - VALUE_WIDTH))
    chart = Chart(width=width, height=0, plot=axis.plot, unit="points" if points else "log-odds")
    start_label, end_label = _end_labels(score, points, shown)
    chart.bars.append(_marker(start_label, "base", TOP, axis.x(start), "0" if points else f"{start:.2f}"))
    for row, (reason, before, after) in enumerate(zip(reasons, running, running[1:], strict=False), start=1):
        y = TOP + row * ROW_HEIGHT
        chart.bars.append(_reason_bar(reason, y, axis.x(before), axis.x(after), points, chart.unit))
        chart.connectors.append((axis.x(before), y - ROW_HEIGHT + 4, y + 4))
    final = running[-1]
    return _finish(chart, axis, len(reasons), final, end_label,
                   f"{final:.0f}" if points else f"{final:.2f}", points)


def _finish(chart: Chart, axis: _Axis, rows: int, final: float, label: str, value_text: str,
            points: bool) -> Chart:
    """The end of the walk, the axis and the height."""
    y = TOP + (rows + 1) * ROW_HEIGHT
    chart.connectors.append((axis.x(final), y - ROW_HEIGHT + 4, y + 4))
    chart.bars.append(_marker(label, "total", y, axis.x(final), value_text))
    chart.axis_y = y + ROW_HEIGHT
    chart.ticks = axis.ticks(points)
    chart.height = int(chart.axis_y + 22)
    return chart


def _end_labels(score: ScoreResponse, points: bool, shown: float) -> tuple[str, str]:
    if points:
        return "No points", f"Points from these reasons: {shown:+.0f}"
    return "Baseline and all other factors", f"Score {score.score:.0f} · {score.probability:.1%} chance"


def _marker(label: str, kind: str, y: float, x: float, value_text: str) -> Bar:
    """The start or the end of the walk: a mark at one value, its label as its title."""
    return Bar(label, label, kind, y, x, x, value_text, x + 8, "start")


def _reason_bar(reason: Reason, y: float, x_from: float, x_to: float, points: bool, unit: str) -> Bar:
    impact = f"{reason.impact:+.0f}" if points else f"{reason.impact:+.2f}"
    return _step_bar(reason.label or reason.text, f"{reason.text} ({impact} {unit})", impact, reason.impact,
                     y, x_from, x_to)


def _step_bar(label: str, title: str, value_text: str, change: float, y: float, x_from: float,
              x_to: float) -> Bar:
    """One step, from the running total before it to the one after; at least 2 px wide."""
    kind = "up" if change >= 0 else "down"
    left, right = sorted((x_from, x_to))
    right = max(right, left + 2)
    value_x, anchor = (right + 5, "start") if kind == "up" else (left - 5, "end")
    return Bar(_truncate(label, 58), title, kind, y, left, right, value_text, value_x, anchor)


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

    pts = [{"x": px(h.scored_at.timestamp()), "y": py(h.score or 0), "score": h.score, "tier": h.tier,
            "colour": tier_colours.get(h.tier or "", DEFAULT_TIER_COLOUR),
            "title": f"{h.scored_at:%Y-%m-%d}: score {h.score:.0f}, {h.tier or '-'}"} for h in scored]
    picks = sorted({0, len(scored) - 1, len(scored) // 2})
    anchors = {0: "start", len(scored) - 1: "end"} if len(scored) > 1 else {}
    xlabels = [(pts[i]["x"], f"{scored[i].scored_at:%d %b %Y}", anchors.get(i, "middle")) for i in picks]
    return HistoryChart(
        width=width, height=height, points=pts, polyline=" ".join(f"{p['x']},{p['y']}" for p in pts),
        grid=[(py(s), str(s)) for s in (0, 25, 50, 75, 100)], xlabels=xlabels,
        mql_y=py(mql) if mql is not None else None, plot=(x0, x1, y0, y1))
