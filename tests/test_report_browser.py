"""Look at the reports as a person would: render them in headless Chromium at 1400, 1024 and 400 px.

Catches what string checks cannot: a page wider than the window (a table or figure that does not
scroll inside its card), images that do not decode, a figure with something cut off or a legend over
the data (flagged data-clipped when the PNG is made), console errors, CSS that hides everything.
Skipped where Chromium is not installed (`apt-get install chromium`).

`python tests/test_report_browser.py docs/img` regenerates the README screenshots from the current code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from conftest import MINIMAL, minimal  # noqa: E402
from twin.report.compare import write_compare_report  # noqa: E402
from twin.runner import run_scenario  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
WIDTHS = (1400, 1024, 400)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]
SLOTS = "topology.sites[LCG.PIC.es].ces[pic-ce].slots"
FAULT = {"kind": "site_down", "target": "LCG.PIC.es", "start": "30m", "end": "90m"}

# Injected into a copy of the page: record errors as they happen, then measure the laid-out page.
PROBE_HEAD = """<script>window.__errors=[];window.addEventListener('error',e=>__errors.push(String(e.message)));
(()=>{const ce=console.error.bind(console);console.error=(...a)=>{__errors.push(a.map(String).join(' '));ce(...a)}})();</script>"""
# Interactive charts are opened first (each is drawn when its block opens), so they are laid out and measured too;
# a chart's legend is uPlot's own inline table (it wraps), not a data table.
PROBE_TAIL = """<script>window.addEventListener('load',()=>{
document.querySelectorAll('details.zoom').forEach(d=>d.open=true); setTimeout(()=>{
const vw=document.documentElement.clientWidth, out={errors:__errors, viewport:vw, charts:document.querySelectorAll('.uplot').length,
 page_width:document.documentElement.scrollWidth, unscrolled_tables:[], wide_boxes:[], clipped:[], broken_images:[]};
for(const t of document.querySelectorAll('table:not(.u-legend)')){ if(!t.parentElement.classList.contains('scroll'))
  out.unscrolled_tables.push((t.querySelector('th')||{}).textContent||'table'); }
for(const b of document.querySelectorAll('.scroll, figure, pre, .cards, .box, .ichart, .uplot')){ const r=b.getBoundingClientRect();
  if(r.right>vw+1) out.wide_boxes.push(b.className||b.tagName); }
for(const i of document.querySelectorAll('img')){ if(!(i.complete&&i.naturalWidth>0)) out.broken_images.push(i.alt);
  if(i.dataset.clipped) out.clipped.push(i.alt+': '+i.dataset.clipped); }
const pre=document.createElement('pre'); pre.id='twin-probe'; pre.textContent=JSON.stringify(out); document.body.appendChild(pre);},300);});
</script>"""
# Hover the middle of the first chart (its legend then shows each series' value there), then drag from 20% to 60%
# of its width (the time axis must zoom to that span). uPlot applies a zoom in a microtask: read it a tick later.
INTERACT_TAIL = """<script>window.addEventListener('load',()=>{
const d=document.querySelector('details.zoom'); d.open=true; setTimeout(()=>{
 const el=d.querySelector('.ichart'), u=el._uplot, over=el.querySelector('.u-over'), r=over.getBoundingClientRect();
 const at=f=>({clientX:r.left+f*r.width, clientY:r.top+r.height/2, movementX:5, bubbles:true, view:window, button:0});
 const out={errors:__errors, title:JSON.parse(el.dataset.chart).title, before:[u.scales.x.min,u.scales.x.max]};
 over.dispatchEvent(new MouseEvent('mouseenter',at(0.5))); over.dispatchEvent(new MouseEvent('mousemove',at(0.5)));
 out.hover=[...el.querySelectorAll('.u-legend .u-series')].map(s=>[s.querySelector('.u-label').textContent, s.querySelector('.u-value').textContent]);
 over.dispatchEvent(new MouseEvent('mousedown',at(0.2))); over.dispatchEvent(new MouseEvent('mousemove',at(0.6)));
 document.dispatchEvent(new MouseEvent('mouseup',at(0.6)));
 setTimeout(()=>{ out.after=[u.scales.x.min,u.scales.x.max];
  const pre=document.createElement('pre'); pre.id='twin-probe'; pre.textContent=JSON.stringify(out); document.body.appendChild(pre);},100);
},300);});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="twin-chromium-")
    try:
        return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--hide-scrollbars", f"--user-data-dir={profile}", *args],
                              check=True, capture_output=True, timeout=180, text=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 4000) -> Image.Image:
    """Screenshot of a local HTML file at a window size; no network, throw-away profile."""
    chromium(f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri())
    return Image.open(png).convert("RGB")


def layout(page: Path, width: int, tmp: Path, tail: str = PROBE_TAIL) -> dict:
    """Lay the page out at `width` px and return the probe's measurements (and console errors)."""
    probed = tmp / f"probe-{width}-{page.name}"
    text = page.read_text(encoding="utf-8")
    probed.write_text(text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", tail + "</body>", 1),
                      encoding="utf-8")
    dom = chromium(f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom", probed.resolve().as_uri()).stdout
    start = dom.index('<pre id="twin-probe">') + len('<pre id="twin-probe">')
    import html

    return json.loads(html.unescape(dom[start:dom.index("</pre>", start)]))


def assert_rendered(image: Image.Image, png: Path) -> None:
    """A real page: big enough, many colours, and content (not background) all the way down the top screen."""
    assert png.stat().st_size > 60_000
    pixels = np.asarray(image, dtype=float)
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3)[::97], axis=0)) > 50
    rows_with_content = (pixels.std(axis=(1, 2)) > 5).mean()
    assert rows_with_content > 0.5


def make_reports(root: Path) -> dict[str, Path]:
    """A run (with a deadline, a start date and a fault), a what-if compare, and a two-parameter sweep with 2 seeds."""
    from twin.sweep import run_sweep

    base, whatif = root / "base", root / "whatif"
    run_scenario(minimal(**{"run.sample_interval": "10m", "run.deadline": "4h", "run.start_date": "2026-03-01"}), base,
                 progress=False)
    run_scenario(minimal(**{"run.sample_interval": "10m", "run.deadline": "4h", "name": "minimal-whatif",
                            SLOTS: 10, "faults": [FAULT]}), whatif, progress=False)
    compare = write_compare_report(base, whatif, root / "compare")
    run_sweep(MINIMAL, [f"{SLOTS}=5,20", "topology.sites[LCG.IN2P3-CC.fr].ces[cc-ce].slots=20,40"], 2, root / "sweep",
              workers=0, progress=False)
    return {"run": base / "report.html", "compare": compare, "sweep": root / "sweep" / "report.html"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_reports(tmp_path_factory.mktemp("reports"))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", ["run", "compare", "sweep"])
def test_report_lays_out_at_every_width(reports: dict[str, Path], kind: str, width: int, tmp_path: Path) -> None:
    probe = layout(reports[kind], width, tmp_path)
    assert probe["errors"] == [], f"console errors: {probe['errors']}"
    assert probe["page_width"] <= probe["viewport"] + 1, f"page wider than the window at {width} px"
    assert probe["unscrolled_tables"] == [], "tables outside a scrolling box"
    assert probe["wide_boxes"] == [], f"boxes wider than the window: {probe['wide_boxes']}"
    assert probe["clipped"] == [], f"figures with something cut off: {probe['clipped']}"
    assert probe["broken_images"] == []
    assert probe["charts"] >= (4 if kind == "run" else 0), "interactive charts not drawn"


@pytest.mark.parametrize("width", (1400, 400))
def test_a_chart_zooms_and_shows_values_on_hover(reports: dict[str, Path], width: int, tmp_path: Path) -> None:
    probe = layout(reports["run"], width, tmp_path, INTERACT_TAIL)
    assert probe["errors"] == [], f"console errors: {probe['errors']}"
    assert probe["title"] == "Progress against target"
    (x_label, when), *series = probe["hover"]
    assert x_label.startswith("time (UTC)") and when.startswith("2026-03-01 ")  # the run's start date
    assert series and all(value not in ("", "–", "--") for _, value in series), probe["hover"]
    (lo, hi), (zoom_lo, zoom_hi) = probe["before"], probe["after"]
    pixel = 0.01 * (hi - lo)  # the drag is in whole pixels
    assert zoom_lo == pytest.approx(lo + 0.2 * (hi - lo), abs=pixel) and zoom_hi == pytest.approx(lo + 0.6 * (hi - lo), abs=pixel)


@pytest.mark.parametrize("kind", ["run", "compare", "sweep"])
def test_report_renders(reports: dict[str, Path], kind: str, tmp_path: Path) -> None:
    png = tmp_path / f"{kind}.png"
    assert_rendered(screenshot(reports[kind], png, height=1800), png)  # the top screens (a sweep page is short)


def regenerate_screenshots(out: Path) -> None:
    """docs/img: the top of each report at 1400 px, from the current code."""
    with tempfile.TemporaryDirectory() as tmp:
        pages = make_reports(Path(tmp))
        for kind, name in (("run", "report-example"), ("compare", "compare-example"), ("sweep", "sweep-example")):
            screenshot(pages[kind], out / f"{name}.png", 1400, 2200)
        screenshot(pages["compare"], out / "compare-400px.png", 400, 2400)


if __name__ == "__main__":
    regenerate_screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
