"""Inline SVG charts for the HTML reports, as geometry: no markup is written here.

Each builder returns a :class:`Chart`: its size and a list of :class:`Element` (an SVG tag
from :data:`TAGS`, its attributes, optional text and tooltip). The ``svg`` macro of
``templates/macros.html.j2`` writes them out; jinja2's autoescape escapes every attribute value
and text, so a label from the data ("<B>", a review) can never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GREY", "INK", "MUTED", "Chart", "Element", "bars", "lines", "nice_max", "radar", "stacked"]

#: The SVG elements a chart may contain.
TAGS = frozenset({"line", "polyline", "polygon", "circle", "rect", "text"})
INK, MUTED, FAINT, GRID = "#1f2933", "#52606d", "#616e7c", "#e4e7eb"
GREY = "#9aa0a6"


@dataclass
class Element:
    """One SVG element: ``tag`` (one of :data:`TAGS`), attributes, text, tooltip."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if self.tag not in TAGS:
            raise ValueError(f"not a chart element: {self.tag!r}")


@dataclass
class Chart:
    """An SVG chart: ``viewBox`` size, how wide it is drawn, an accessible label, elements."""

    width: float
    height: float
    label: str
    elements: list[Element] = field(default_factory=list)
    css_width: str = "100%"
    max_width: float | None = None

    def add(self, tag: str, text: str = "", title: str = "", **attrs: object) -> None:
        """Append an element; attribute names use ``_`` for ``-`` (``text_anchor``)."""
        self.elements.append(Element(tag, {k.replace("_", "-"): _fmt(v) for k, v in attrs.items()}, text, title))


def _fmt(v: object) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def nice_max(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at least ``v`` (1 for nothing to show)."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp * (1 + 1e-12):
            return m * exp
    return 10 * exp


def radar(axes: Sequence[str], values: Sequence[float], vmax: float, color: str, *, size: int = 230,
          title: str = "", reference: float | None = None, reference_label: str = "", ring_label: str = "",
          tooltips: Sequence[str] | None = None) -> Chart:
    """A radar (spider) chart; ``values`` scaled to ``vmax`` (the outer ring).

    ``reference`` draws a dashed ring at that value (e.g. 1 = the shop's average when the
    values are indices against it); ``tooltips`` (one per axis) say what each point is.
    """
    n = len(axes)
    pad = 44  # room for the axis labels left and right
    cx, cy, r = size / 2 + pad, size / 2 + 6, size / 2 - 40
    c = Chart(size + 2 * pad, size + 8, title, css_width="100%", max_width=size + 2 * pad)

    def pt(i: int, frac: float) -> tuple[float, float]:
        ang = -math.pi / 2 + 2 * math.pi * i / n
        return cx + r * frac * math.cos(ang), cy + r * frac * math.sin(ang)

    def poly(fracs: Sequence[float]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in (pt(i, f) for i, f in enumerate(fracs)))

    for ring in (0.25, 0.5, 0.75, 1.0):
        c.add("polygon", points=poly([ring] * n), fill="none", stroke="#dde1e6", stroke_width=1)
    for i, name in enumerate(axes):
        x, y = pt(i, 1.0)
        c.add("line", x1=cx, y1=cy, x2=x, y2=y, stroke="#dde1e6")
        lx, ly = pt(i, 1.2)
        anchor = "middle" if abs(lx - cx) < 8 else ("start" if lx > cx else "end")
        c.add("text", name, x=lx, y=ly + 4, font_size=11, fill=MUTED, text_anchor=anchor)
    if reference is not None and 0 < reference <= vmax:
        c.add("polygon", title=reference_label, points=poly([reference / vmax] * n), fill="none", stroke=MUTED,
              stroke_width=1.2, stroke_dasharray="4,3")
    fracs = [0.0 if not math.isfinite(v) else min(max(0.0, v) / vmax, 1.0) for v in values]
    c.add("polygon", points=poly(fracs), fill=color, fill_opacity="0.28", stroke=color, stroke_width=2)
    for i, f in enumerate(fracs):
        x, y = pt(i, f)
        tip = tooltips[i] if tooltips else f"{axes[i]}: {values[i]:.3f}"
        c.add("circle", title=tip, cx=x, cy=y, r=2.5, fill=color)
    if ring_label:
        c.add("text", ring_label, x=size + 2 * pad - 4, y=size + 4, font_size=10, fill=FAINT, text_anchor="end")
    return c


def lines(x_labels: Sequence[str], series: Mapping[str, Sequence[float]], colors: Mapping[str, str], *,
          y_label: str = "", width: int = 1100, height: int = 260, y_range: tuple[float, float] | None = None,
          zero_line: bool = False, markers: Mapping[str, Sequence[bool]] | None = None,
          dashed: Sequence[str] = (), y_format: str = "{:.3g}") -> Chart:
    """A multi-series line chart over categorical x positions (NaN breaks a line)."""
    left, right, top, bottom = 56, 14, 12, 34
    pw, ph = width - left - right, height - top - bottom
    finite = np.array([v for s in series.values() for v in s if v is not None and math.isfinite(v)], dtype=float)
    if y_range is None:
        lo = float(min(0.0, finite.min())) if finite.size else 0.0
        hi = nice_max(float(finite.max())) if finite.size else 1.0
        if lo < 0:
            lo = -nice_max(-lo)
    else:
        lo, hi = y_range
    hi = hi if hi > lo else lo + 1
    n = max(len(x_labels), 1)

    def X(i: float) -> float:
        return left + (pw * (i / (n - 1)) if n > 1 else pw / 2)

    def Y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    c = Chart(width, height, y_label)
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        c.add("line", x1=left, x2=left + pw, y1=Y(v), y2=Y(v), stroke="#eef0f3")
        c.add("text", y_format.format(v), x=left - 6, y=Y(v) + 4, font_size=10.5, fill=FAINT, text_anchor="end")
    if zero_line and lo < 0 < hi:
        c.add("line", x1=left, x2=left + pw, y1=Y(0), y2=Y(0), stroke=GREY, stroke_dasharray="3,3")
    step = max(1, math.ceil(n / 14))
    for i, lab in enumerate(x_labels):
        if i % step == 0 or (i == n - 1 and i % step >= step / 2 + 1) or n == 1:
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            c.add("text", lab, x=X(i), y=height - 12, font_size=10.5, fill=FAINT, text_anchor=anchor)
    if y_label:
        c.add("text", y_label, x=12, y=top + ph / 2, font_size=11, fill=MUTED, text_anchor="middle",
              transform=f"rotate(-90 12 {top + ph / 2:.1f})")
    for name, vals in series.items():
        color = colors.get(name, GREY)
        segs: list[list[tuple[float, float]]] = []
        cur: list[tuple[float, float]] = []
        for i, v in enumerate(vals):
            if v is None or not math.isfinite(v):
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append((X(i), Y(min(max(v, lo), hi))))
        if cur:
            segs.append(cur)
        for sgm in segs:
            if len(sgm) == 1:
                c.add("circle", title=name, cx=sgm[0][0], cy=sgm[0][1], r=2.5, fill=color)
            else:
                extra = {"stroke_dasharray": "5,4"} if name in dashed else {}
                c.add("polyline", title=name, points=" ".join(f"{x:.1f},{y:.1f}" for x, y in sgm), fill="none",
                      stroke=color, stroke_width=2, **extra)
        if markers and name in markers:
            for i, (v, m) in enumerate(zip(vals, markers[name])):
                if m and v is not None and math.isfinite(v):
                    c.add("circle", cx=X(i), cy=Y(v), r=6, fill="none", stroke="#b3261e", stroke_width=2.5)
    return c


def stacked(x_labels: Sequence[str], stacks: Mapping[str, Sequence[float]], colors: Mapping[str, str], *,
            y_label: str = "", width: int = 1100, height: int = 220, flags: Sequence[bool] | None = None) -> Chart:
    """Stacked vertical bars per x position (first stack at the bottom); flagged bars get a red mark."""
    left, right, top, bottom = 56, 14, 16, 34
    pw, ph = width - left - right, height - top - bottom
    n = max(len(x_labels), 1)
    totals = np.zeros(n)
    for vals in stacks.values():
        totals += np.nan_to_num(np.asarray(vals, dtype=float))
    hi = nice_max(float(totals.max()) if totals.size else 1.0)
    bw = pw / n

    def Y(v: float) -> float:
        return top + ph * (1 - v / hi)

    c = Chart(width, height, y_label)
    for k in range(5):
        v = hi * k / 4
        c.add("line", x1=left, x2=left + pw, y1=Y(v), y2=Y(v), stroke="#eef0f3")
        c.add("text", f"{v:.3g}", x=left - 6, y=Y(v) + 4, font_size=10.5, fill=FAINT, text_anchor="end")
    if y_label:
        c.add("text", y_label, x=12, y=top + ph / 2, font_size=11, fill=MUTED, text_anchor="middle",
              transform=f"rotate(-90 12 {top + ph / 2:.1f})")
    base = np.zeros(n)
    for name, vals in stacks.items():
        v = np.nan_to_num(np.asarray(vals, dtype=float))
        for i in range(n):
            if v[i] > 0:
                y0, y1 = Y(base[i]), Y(base[i] + v[i])
                c.add("rect", title=f"{x_labels[i]} {name}: {v[i]:g}", x=left + i * bw + bw * 0.12, y=y1, width=bw * 0.76,
                      height=max(y0 - y1, 0.5), fill=colors.get(name, GREY))
        base += v
    for i, flagged in enumerate(flags or ()):
        if flagged:
            c.add("text", "alert", x=left + i * bw + bw / 2, y=Y(base[i]) - 4, font_size=12, font_weight=700,
                  fill="#b3261e", text_anchor="middle")
    step = max(1, math.ceil(n / 12))
    for i, lab in enumerate(x_labels):
        if i % step == 0:
            c.add("text", lab, x=left + i * bw + bw / 2, y=height - 12, font_size=10.5, fill=FAINT, text_anchor="middle")
    return c


def bars(labels: Sequence[str], values: Sequence[float], *, highlight: int | None = None, width: int = 360,
         height: int = 150, fmt: str = "{:.3f}", label: str = "bars") -> Chart:
    """A small vertical bar chart (e.g. the silhouette per k), one value label per bar."""
    left, bottom, top = 10, 26, 18
    n = max(len(values), 1)
    vals = [v if math.isfinite(v) else 0.0 for v in values]
    vmax = max(max(vals, default=0.0), 1e-9)
    bw = (width - 2 * left) / n
    c = Chart(width, height, label, css_width=str(width))
    for i, (lab, v) in enumerate(zip(labels, vals)):
        h = (height - bottom - top) * max(v, 0) / vmax
        x = left + i * bw + bw * 0.15
        y = height - bottom - h
        c.add("rect", x=x, y=y, width=bw * 0.7, height=h, fill="#30638e" if i == highlight else "#b8c4d0", rx=2)
        c.add("text", fmt.format(values[i]) if math.isfinite(values[i]) else "\u2013", x=x + bw * 0.35, y=y - 4,
              font_size=10, fill=MUTED, text_anchor="middle")
        c.add("text", lab, x=x + bw * 0.35, y=height - 9, font_size=11, fill=MUTED, text_anchor="middle")
    return c
