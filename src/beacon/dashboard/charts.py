"""Charts drawn on the server as inline SVG: time-series lines and breakdown bars.

No script and no external asset: the page stays readable without JavaScript
and under a strict Content-Security-Policy. Each chart is an ``<svg
role="img">`` with ``<title>`` and ``<desc>``; every data point carries its own
``<title>`` (a tooltip on hover), and the page puts the same numbers in a
table right after the chart for screen readers and keyboard users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["Series", "bar_chart", "line_chart", "nice_ceiling"]

_WIDTH = 720
_LINE_HEIGHT = 260
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 56, 16, 16, 40
_BAR_ROW = 28
_BAR_LABEL = 250
_MAX_LABEL = 38


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: a name for the legend and one value per x label."""

    name: str
    values: Sequence[int | float]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (min 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f") if value == int(value) else f"{value:.1f}"


def _shorten(text: str, room: int) -> str:
    limit = max(8, min(_MAX_LABEL, room // 7))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line_chart(
    *, chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series]
) -> Markup:
    """A line chart of ``series`` over ``labels`` (one point per label, with a tooltip)."""
    count = len(labels)
    top = nice_ceiling(max((max(s.values, default=0) for s in series), default=0))
    plot_width = _WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_height = _LINE_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM

    def x(index: int) -> float:
        if count <= 1:
            return _MARGIN_LEFT + plot_width / 2
        return _MARGIN_LEFT + index * plot_width / (count - 1)

    def y(value: float) -> float:
        return _MARGIN_TOP + plot_height * (1 - value / top)

    parts = [
        f'<svg class="chart line-chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {_WIDTH} {_LINE_HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
        '<g class="grid">',
    ]
    for step in range(5):
        value = top * step / 4
        level = y(value)
        parts.append(
            f'<line x1="{_MARGIN_LEFT}" x2="{_WIDTH - _MARGIN_RIGHT}" '
            f'y1="{level:.1f}" y2="{level:.1f}"/>'
            f'<text class="axis" x="{_MARGIN_LEFT - 6}" y="{level + 4:.1f}" '
            f'text-anchor="end">{_number(value)}</text>'
        )
    parts.append("</g>")
    ticks = sorted({round(i * (count - 1) / 5) for i in range(6)}) if count > 1 else [0]
    for index in ticks if count else []:
        parts.append(
            f'<text class="axis" x="{x(index):.1f}" y="{_LINE_HEIGHT - 14}" '
            f'text-anchor="middle">{escape(labels[index])}</text>'
        )
    for number, line in enumerate(series):
        points = [(x(i), y(float(v))) for i, v in enumerate(line.values[:count])]
        parts.append(f'<g class="series series-{number}" data-series="{escape(line.name)}">')
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline fill="none" points="{path}"/>')
        for (px, py), label, value in zip(points, labels, line.values, strict=False):
            parts.append(
                f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" data-value="{value}">'
                f"<title>{escape(line.name)} · {escape(label)} : {_number(value)}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch series-{number}" aria-hidden="true"></span>'
        f"{escape(line.name)}</li>"
        for number, line in enumerate(series)
    )
    markup = (
        f'<figure class="chart-figure">{"".join(parts)}<ul class="legend">{legend}</ul></figure>'
    )
    return Markup(markup)  # noqa: S704 - every text above went through escape()


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, int | float]],
    width: int = _WIDTH,
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, longest label shortened with a tooltip.

    ``width`` is the drawing's width in SVG units: a narrower drawing keeps its
    text readable when the chart sits in a half-width column.
    """
    height = max(len(rows), 1) * _BAR_ROW + 8
    top = nice_ceiling(max((value for _, value in rows), default=0))
    label_width = min(_BAR_LABEL, int(width * 0.4))
    room = width - label_width - 70
    parts = [
        f'<svg class="chart bar-chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]
    for index, (label, value) in enumerate(rows):
        top_y = 4 + index * _BAR_ROW
        bar = max(room * float(value) / top, 1.0 if value else 0.0)
        parts.append(
            f'<g class="bar" data-value="{value}"><title>{escape(label)} : {_number(value)}</title>'
            f'<text class="bar-label" x="{label_width - 8}" y="{top_y + 18}" '
            f'text-anchor="end">{escape(_shorten(label, label_width))}</text>'
            f'<rect x="{label_width}" y="{top_y + 4}" width="{bar:.1f}" height="{_BAR_ROW - 8}"/>'
            f'<text class="bar-value" x="{label_width + bar + 6:.1f}" y="{top_y + 18}">'
            f"{_number(value)}</text></g>"
        )
    parts.append("</svg>")
    markup = f'<figure class="chart-figure">{"".join(parts)}</figure>'
    return Markup(markup)  # noqa: S704 - every text above went through escape()
