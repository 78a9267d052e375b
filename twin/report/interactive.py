"""Interactive time series in a report that stays one file: drag to zoom on the time axis, double-click
to zoom out, hover for every series' value at that time.

Why uPlot (MIT, vendored in `vendor/`, v1.6.32): it does exactly zoom and hover on time series, in 51 kB
of JavaScript plus 2 kB of CSS inlined once per page, with no network; Plotly would add ~3.5 MB to every
report, Bokeh ~1 MB with its own data model, and hand-written SVG zoom would be a small charting library
to maintain. The PNG figures stay (they print, they mail, the browser test checks them for clipping);
a chart sits under a figure in a folded "Zoom and hover" block and is drawn when first opened, so a
page with many charts costs nothing until a reader asks.

Each chart is a `<div class="ichart" data-chart="{json}">`: x in days since the start (or, with a start
date, the calendar: `start` is day 0 as Unix seconds), one value list per series (null: a gap), colours
as in the PNG. Values carry 4 significant digits, enough for reading and small in the page.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import numpy as np

from twin.report import dates as D
from twin.report import figures as F
from twin.report.render import Html, esc, tag

SIGNIFICANT = 4
MAX_POINTS = 2000  # per series: a year of 6 h samples is 1,460


@lru_cache(maxsize=1)
def _vendor(name: str) -> str:
    return resources.files("twin.report").joinpath(f"vendor/{name}").read_text(encoding="utf-8")


def assets() -> Html:
    """uPlot's CSS and JS and the page's chart builder, inline (once per page)."""
    return Html(f"<style>{_vendor('uPlot.min.css')}{CSS}</style><script>{_vendor('uPlot.iife.min.js')}</script>"
                f"<script>{BUILDER}</script>")


def common_grid(curves: F.Curves) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All series on one x grid (uPlot's data model): the union of their x; a series holds its last value
    between its own points (step), and has no value (gap) before its first point."""
    xs = [np.asarray(x, dtype=float) for x, _ in curves.values()]
    if all(len(x) == len(xs[0]) and np.array_equal(x, xs[0]) for x in xs):
        return xs[0], {k: np.asarray(y, dtype=float) for k, (_, y) in curves.items()}
    grid = np.unique(np.concatenate(xs))
    out = {}
    for name, (x, y) in curves.items():
        idx = np.searchsorted(np.asarray(x, dtype=float), grid, side="right") - 1
        out[name] = np.where(idx >= 0, np.asarray(y, dtype=float)[np.maximum(idx, 0)], np.nan)
    return grid, out


def _thin(x: np.ndarray, ys: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """At most MAX_POINTS points: every k-th sample (the PNG shows the full curve)."""
    if len(x) <= MAX_POINTS:
        return x, ys
    keep = np.unique(np.r_[np.arange(0, len(x), math.ceil(len(x) / MAX_POINTS)), len(x) - 1])
    return x[keep], {k: y[keep] for k, y in ys.items()}


def _values(y: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(f"{v:.{SIGNIFICANT}g}") for v in y.tolist()]


def payload(curves: F.Curves, colors: Mapping[str, str], title: str, ylabel: str, step: bool = True) -> dict[str, Any]:
    """The chart's data as the page's builder reads it."""
    x, ys = _thin(*common_grid(curves))
    palette = F.palette(curves)
    return {"title": title, "ylabel": ylabel, "xlabel": D.axis_label(), "step": step,
            "start": D.start_epoch(),
            "x": [float(f"{v:.6g}") for v in x.tolist()],
            "series": [{"label": k, "color": colors.get(k) or palette[k], "values": _values(y)} for k, y in ys.items()]}


def chart(curves: F.Curves, colors: Mapping[str, str], title: str, ylabel: str, step: bool = True) -> Html:
    """A folded interactive chart of `curves` ({label: (days, values)}), or "" with nothing to show."""
    curves = {k: v for k, v in curves.items() if len(v[0])}
    if not curves:
        return Html("")
    data = json.dumps(payload(curves, colors, title, ylabel, step), separators=(",", ":"), allow_nan=False)
    div = Html(f'<div class="ichart" data-chart="{esc(data)}"></div>')
    return tag("details", Html(tag("summary", f"Zoom and hover: {title}") + div), class_="zoom")


CSS = """
details.zoom{margin:-8px 0 16px}
.ichart{max-width:100%;overflow:hidden}
.ichart .u-title{font-size:13px;font-weight:600;text-align:left}
.ichart .u-legend{font-size:12.5px;text-align:left}
.ichart .u-legend .u-series{padding:0 6px}
.ichart .u-hint{font-size:12px;color:#57606a;margin:2px 0 4px}
"""

# The page's chart builder: draws a chart when its <details> first opens, resizes it with the page.
BUILDER = r"""
(function(){
  function num(v){ if(v==null) return '\u2013'; var a=Math.abs(v);
    return a>=1000 ? Math.round(v).toLocaleString('en') : String(+v.toPrecision(4)); }
  function width(el){ return Math.max(240, el.clientWidth || el.parentElement.clientWidth || 600); }
  function build(el){
    if(el._uplot) return el._uplot;
    var s=JSON.parse(el.getAttribute('data-chart')), dated=s.start!=null;
    var x=dated ? s.x.map(function(d){return s.start+d*86400;}) : s.x;
    var series=[{label: dated ? 'time (UTC)' : 'day', value: dated ? '{YYYY}-{MM}-{DD} {HH}:{mm}' :
      function(u,v){ return v==null ? '\u2013' : v.toFixed(2)+' d'; }}];
    s.series.forEach(function(c){ series.push({label:c.label, stroke:c.color, width:1.5, spanGaps:false,
      value:function(u,v){ return num(v); }, paths: s.step ? uPlot.paths.stepped({align:1}) : undefined}); });
    var hint=document.createElement('div'); hint.className='u-hint';
    hint.textContent='Drag across the plot to zoom in on a time span, double-click to zoom out; the legend shows the values under the cursor.';
    el.appendChild(hint);
    var opts={title:s.title, width:width(el), height:320, series:series, legend:{live:true},
      scales:{x:{time:dated}}, cursor:{drag:{x:true, y:false}},
      axes:[{label:s.xlabel}, {label:s.ylabel, size:64, values:function(u,vals){ return vals.map(num); }}]};
    if(dated){
      var utc=function(ts){ return uPlot.tzDate(new Date(ts*1e3), 'Etc/UTC'); };
      var day=uPlot.fmtDate('{DD} {MMM}'), hour=uPlot.fmtDate('{DD} {MMM} {HH}:{mm}');
      opts.tzDate=utc;
      opts.axes[0].values=function(u, ticks){ var f=(u.scales.x.max-u.scales.x.min)<=3*86400 ? hour : day;
        return ticks.map(function(t){ return f(utc(t)); }); };
    }
    el._uplot=new uPlot(opts, [x].concat(s.series.map(function(c){ return c.values; })), el);
    return el._uplot;
  }
  document.addEventListener('toggle', function(e){
    if(e.target.open && e.target.classList && e.target.classList.contains('zoom'))
      e.target.querySelectorAll('.ichart').forEach(build);
  }, true);
  window.addEventListener('resize', function(){
    document.querySelectorAll('.ichart').forEach(function(el){ if(el._uplot) el._uplot.setSize({width:width(el), height:320}); });
  });
  window.twinCharts={build:build};
})();
"""
