"""What both HTML reports share: the jinja2 environment, number filters and colours.

Templates live in ``templates/`` next to the module that renders them (shipped as package
data). :func:`environment` loads them with **autoescape on** for every template, so any value
from the data (segment names, review quotes, variant names, error messages) is escaped by
jinja2, never by hand. Colours say good or bad only through :mod:`profiles.metric_directions`.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jinja2

from .charts import Chart
from .metric_directions import Tone

__all__ = ["BAD", "GOOD", "environment", "num", "pct", "readable_on", "render", "sentiment_color", "svg", "tone_class"]

GOOD, BAD, NEUTRAL = "#1b7f4b", "#b3261e", "#52606d"
DASH = "\u2013"


def num(x: Any, fmt: str = "{:.2f}", na: str = DASH) -> str:
    """``fmt`` applied to ``x``; ``na`` for missing, NaN or non-numbers."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return na
    return na if not math.isfinite(v) else fmt.format(v)


def pct(x: Any, fmt: str = "{:.0%}") -> str:
    """A share as a percentage."""
    return num(x, fmt)


def tone_class(t: Tone | str) -> str:
    """CSS class of a tone: ``good`` / ``bad`` / ``""``."""
    return t if t in ("good", "bad") else ""


def _luminance(hex_color: str) -> float:
    rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1..21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(background: str, ink: str = "#1f2933", light: str = "#ffffff") -> str:
    """The text colour (dark ink or white) with the higher contrast on ``background``."""
    return ink if contrast(ink, background) >= contrast(light, background) else light


def sentiment_color(v: float | None) -> str:
    """Diverging red (bad) - white - green (good) for a sentiment in [-1, 1]; light grey for none."""
    if v is None or not math.isfinite(v):
        return "#f1f3f5"
    v = max(-1.0, min(1.0, v / 0.8))
    if v >= 0:
        r, g, b = (int(255 - (255 - c) * v) for c in (46, 160, 90))
    else:
        r, g, b = (int(255 - (255 - c) * -v) for c in (214, 64, 56))
    return f"#{r:02x}{g:02x}{b:02x}"


@functools.cache
def environment(*packages: str) -> jinja2.Environment:
    """A jinja2 environment over the ``templates/`` folders of ``packages`` (first wins), then of
    :mod:`emorec.profiles`; autoescape on for every template."""
    loaders = [jinja2.PackageLoader(p, "templates") for p in (*packages, "emorec.profiles")]
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=num, pct=pct, tone_class=tone_class, readable_on=readable_on)
    return env


def render(template: str, *packages: str, **context: Any) -> str:
    """Render ``template`` (looked up in ``packages``' templates, then profiles') with ``context``."""
    return environment(*packages).get_template(template).render(**context)


def svg(chart: Chart) -> str:
    """One chart as SVG markup (the ``svg`` macro of ``macros.html.j2``; every value escaped)."""
    return environment().get_template("macros.html.j2").module.svg(chart)
