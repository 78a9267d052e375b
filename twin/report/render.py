"""HTML building blocks shared by the run and the compare report.

Every value that reaches the page goes through `esc` unless it is wrapped in `Html`
(markup this module built itself), so scenario names, LFNs or failure reasons can
never inject markup. Figures become base64 PNG data URIs, so a report is a single
file an operator can mail or attach to a ticket.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from typing import Any, Iterable, Sequence

from matplotlib.figure import Figure

from twin.engine.clock import format_duration

PNG_DPI = 100


class Html(str):
    """Markup that is already safe (built here); `esc` passes it through unchanged."""


def esc(value: Any) -> Html:
    """Escape any value for HTML text or attribute context (Html passes unchanged)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(esc(p) for p in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Html:
    """`<name attrs>content</name>`; attribute `class_` is written `class`."""
    attr = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Html(f"<{name}{attr}>{esc(content)}</{name}>")


# ---------------------------------------------------------------- figures
def figure_uri(fig: Figure) -> str:
    """PNG data URI of `fig`; the figure is cleared afterwards so its memory is released."""
    return _encode(fig)[0]


def _encode(fig: Figure) -> tuple[str, list[str]]:
    """(PNG data URI, what was drawn outside the image); the figure is cleared afterwards."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    try:
        FigureCanvasAgg(fig)  # an Agg canvas keeps its renderer after saving, to measure what was drawn where
        fig.set_dpi(PNG_DPI)
        fig.savefig(buf, format="png", dpi=PNG_DPI, facecolor="white")
        outside = clipped(fig)
    finally:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), outside


def clipped(fig: Figure, tolerance: float = 2.0) -> list[str]:
    """Axes (with their tick labels, titles and legends) or figure legends that reach outside the image,
    and figure legends drawn over an axes: what a reader would see cut off or covering the data."""
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        tight = ax.get_tightbbox(renderer)
        if tight is not None and (tight.x0 < box.x0 - tolerance or tight.x1 > box.x1 + tolerance or
                                  tight.y0 < box.y0 - tolerance or tight.y1 > box.y1 + tolerance):
            out.append(f"axes {i} ({ax.get_title(loc='left') or ax.get_title() or ax.get_ylabel()})")
    for legend in fig.legends:
        extent = legend.get_window_extent(renderer)
        if extent.x0 < box.x0 - tolerance or extent.x1 > box.x1 + tolerance or extent.y0 < box.y0 - tolerance:
            out.append("figure legend outside the image")
        if any(extent.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"):
            out.append("figure legend over an axes")
    return out


def figure_html(fig: Figure | None, alt: str, caption: str = "") -> Html:
    """`<figure>` with the embedded PNG, or an empty string when there is nothing to plot. An image with
    something cut off carries data-clipped (the browser test fails on it)."""
    if fig is None:
        return Html("")
    uri, outside = _encode(fig)
    flag = f' data-clipped="{esc("; ".join(outside))}"' if outside else ""
    img = Html(f'<img src="{uri}" alt="{esc(alt)}"{flag}>')
    return tag("figure", join([img, tag("figcaption", caption) if caption else ""]))


# ---------------------------------------------------------------- tables and blocks
def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], row_classes: Sequence[str | None] | None = None) -> Html:
    """A plain table; a column whose cells all look like numbers is right-aligned."""
    rows = [list(r) for r in rows]
    numeric = [bool(rows) and all(_numeric(r[i]) for r in rows if i < len(r)) for i in range(len(headers))]
    head = tag("tr", join(tag("th", h, class_="num" if numeric[i] else None) for i, h in enumerate(headers)))
    body = []
    for r, row in enumerate(rows):
        cls = row_classes[r] if row_classes and r < len(row_classes) else None
        cells = join(tag("td", c, class_="num" if i < len(numeric) and numeric[i] else None) for i, c in enumerate(row))
        body.append(tag("tr", cells, class_=cls))
    return tag("div", tag("table", join([tag("thead", head), tag("tbody", join(body))])), class_="scroll")


_NUMERIC = re.compile(r"^[+\-−]?[\d,.]+\s*(%|pt|s|min|h|d|TB|ms)?$|^[–-]$|^(<[^>]+>)?[+\-−]?[\d,.]+\s*(%|pt|s|min|h|d)?(</[^>]+>)?$")


def _numeric(cell: Any) -> bool:
    return isinstance(cell, (int, float)) or bool(_NUMERIC.match(str(cell).strip()))


def key_values(pairs: Iterable[tuple[Any, Any]]) -> Html:
    """Headline numbers as a grid of small cards."""
    cards = (tag("div", join([tag("div", v, class_="v"), tag("div", k, class_="k")]), class_="card") for k, v in pairs)
    return tag("div", join(cards), class_="cards")


def box(kind: str, title: Any, text: Any) -> Html:
    """Coloured call-out: kind is ok / bad / warn / info."""
    return tag("div", join([tag("strong", title), " ", text]), class_=f"box {kind}")


def details(summary: Any, content: Any) -> Html:
    return tag("details", join([tag("summary", summary), content]))


def pre(text: str) -> Html:
    return tag("pre", text)


def note(text: Any) -> Html:
    return tag("p", text, class_="note")


def section(id_: str, title: str, *parts: Any) -> Html:
    return tag("section", join([tag("h2", title), *parts]), id=id_)


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, Html]], assets: Html = Html("")) -> str:
    """The whole document: inline CSS (and `assets`: inline scripts and styles the sections need), a table of
    contents, then the sections (id, title, body)."""
    nav = tag("nav", join(tag("a", t, href=f"#{i}") for i, t, _ in sections))
    body = join(section(i, t, b) for i, t, b in sections)
    return ("<!DOCTYPE html>\n" + tag("html", join([
        tag("head", join([Html('<meta charset="utf-8">'), Html('<meta name="viewport" content="width=device-width">'),
                          tag("title", title), tag("style", Html(CSS)), assets])),
        tag("body", join([tag("header", join([tag("h1", title), tag("p", subtitle, class_="sub")])), nav, tag("main", body)])),
    ]), lang="en") + "\n")


# ---------------------------------------------------------------- number formatting
def num(value: Any, digits: int = 0) -> str:
    """Thousands-separated number; '–' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and digits == 0 and value != int(value) and abs(value) < 10:
            digits = 2
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: float | None, digits: int = 0) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}%}"


def duration(seconds: float | None) -> str:
    return "–" if seconds is None else format_duration(float(seconds))


def verdict_kind(plan: dict[str, Any]) -> tuple[str, str]:
    """Box colour and title of the plan verdict: deadline met / missed / no deadline."""
    met = plan.get("deadline_met")
    if met is True:
        return "ok", "Deadline met."
    if met is False:
        return "bad", "Deadline MISSED."
    if plan.get("complete"):
        return "info", "No deadline set."
    return "warn", "No deadline set."


CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d232a;background:#f4f6f8;font-size:15px;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:18px 32px 12px}
header h1{margin:0;font-size:24px}
header .sub{margin:4px 0 0;color:#c9d6e6}
nav{background:#fff;border-bottom:1px solid #d8dee4;padding:8px 32px;position:sticky;top:0;z-index:1;display:flex;flex-wrap:wrap;gap:2px 18px}
nav a{color:#1f5fa8;text-decoration:none;font-size:14px;white-space:nowrap}
@media (max-width:700px){nav{position:static;padding:8px 12px}main{padding:4px 8px 24px}section{padding:4px 10px 12px}header{padding:14px 12px 10px}}
main{max-width:1240px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;margin:18px 0;padding:6px 22px 16px;scroll-margin-top:48px}
h2{font-size:19px;border-bottom:1px solid #e3e8ed;padding-bottom:6px}
h3{font-size:16px;margin:18px 0 6px}
.scroll{overflow-x:auto;max-width:100%;margin:8px 0 14px}
table{border-collapse:collapse;font-size:13.5px}
th,td{border-bottom:1px solid #e3e8ed;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f3f6}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
tr.bad td{background:#fde8e8;color:#8a1c1c}
tr.warn td{background:#fff6dc}
tr.ok td{color:#1b6b2f}
span.better{color:#1b6b2f;font-weight:600}
span.worse{color:#b42318;font-weight:600}
span.st-done{color:#1b6b2f;font-weight:600}
span.st-running{color:#1f5fa8;font-weight:600}
span.st-waiting{color:#9a6700}
span.st-stalled{color:#c2410c;font-weight:600}
span.st-failed{color:#b42318;font-weight:600}
span.untested{font-weight:400;opacity:.75;font-style:italic}
figure{margin:10px 0 18px}
figure img{max-width:100%;height:auto;display:block;border:1px solid #eef1f4}
figcaption{font-size:13px;color:#57606a;margin-top:4px}
.box{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:16px;border-left:6px solid}
.box.ok{background:#e6f4ea;border-color:#1b873f}
.box.bad{background:#fde8e8;border-color:#c62828}
.box.warn{background:#fff4d6;border-color:#c98a00}
.box.info{background:#e8f0fb;border-color:#1f5fa8}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid #d8dee4;border-radius:6px;padding:8px 14px;min-width:130px;background:#fafbfc}
.card .v{font-size:20px;font-weight:600}
.card .k{font-size:12.5px;color:#57606a}
.note{color:#57606a;font-size:13.5px}
details{margin:8px 0}
summary{cursor:pointer;color:#1f5fa8}
@media print{nav{position:static}figure,table{break-inside:avoid}}
pre{background:#f6f8fa;border:1px solid #e3e8ed;padding:10px;overflow:auto;font-size:12.5px;max-height:600px}
"""
