"""The report in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run) opens index.html and
a paper page (peer charts, NoW claims linking to notebook 10) and the NoW notebook (chart, heatmap); checks what is on the page and saves screenshots under reports/."""
import os
import shutil
from pathlib import Path

import pytest

from facenb import report

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]


def _need_browser():
    if CHROMIUM is None:
        msg = "Debian chromium not installed (apt-get install chromium; .ci/run does this)"
        if os.environ.get("FACENB_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def built_report(tmp_path_factory):
    from conftest import mirror_root, need

    mirror = need(mirror_root(), "public data mirror")
    os.environ["FACENB_DATA_MIRROR"] = str(mirror)
    out = tmp_path_factory.mktemp("report")
    os.environ["FACENB_REPORT_DIR"] = str(out)
    res = report.build_report(out, only=["paper_PSL"], echo=lambda s: None)
    assert [r.status for r in res] == ["ok"], res
    import pandas as pd

    led = pd.read_csv(out / "ledger.csv", keep_default_na=False).set_index("claim_id")
    assert led.loc["prnet-aflw2000-nme2d68-balanced", "coverage"] == "40/2000 images"
    return out


def _page_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _coloured_fraction(png: bytes) -> float:
    """Share of strongly coloured pixels (a heatmap's jet colours), excluding greys and white."""
    import io

    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    sat = a.max(axis=2) - a.min(axis=2)
    return float((sat > 80).mean())


def test_index_and_paper_page_in_chromium(built_report):
    sync = _need_browser()
    shots = REPO / "reports"
    shots.mkdir(exist_ok=True)
    with sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors = _page_errors(page)
        page.goto((built_report / "index.html").as_uri())
        assert page.locator("table#ledger tr.claim").count() == 43
        assert page.locator("table#notebooks").inner_text().count("paper_PSL") == 1
        assert "ok" in page.locator("table#notebooks").inner_text()
        tiers = page.locator("ul#tiers li").all_inner_texts()
        assert [t[0] for t in tiers] == list("RSPCQ") and tiers[4].startswith("Q (quoted")
        # the subset recomputation (issue 12): PRNet's AFLW2000-3D NME on the 40 public images, tier S, coverage
        subset = page.locator("table#ledger tr.claim[data-claim='prnet-aflw2000-nme2d68-balanced']")
        assert subset.is_visible()
        cells = subset.locator("td").all_inner_texts()
        assert "S" in cells and "40/2000 images" in cells, cells
        assert tiers[1].startswith("S (recomputed from raw data on a public subset") and tiers[1].endswith(": 1")
        subset.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "browser_index_subset_row.png"))
        page.screenshot(path=str(shots / "browser_index.png"), full_page=True)
        assert errors == [], errors

        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors = _page_errors(page)
        page.goto((built_report / "paper_PSL.html").as_uri())
        page.wait_for_selector(".js-plotly-plot", timeout=30000)  # the peer charts (interactive, offline plotly)
        assert page.locator(".js-plotly-plot").count() >= 1
        body = page.locator("body").inner_text()
        assert "PSL reports no NoW number" in body and "10_now.html" in body  # the NoW section links notebook 10
        assert page.locator("a[href='10_now.html']").count() >= 1
        page.screenshot(path=str(shots / "browser_paper_PSL.png"), full_page=False)
        assert errors == [], errors
        browser.close()


@pytest.fixture(scope="module")
def now_report(tmp_path_factory):
    """reports/10_now.html on a small synthetic NoW set (1 subject, 3 synthetic methods)."""
    from conftest import mirror_root, need

    os.environ["FACENB_DATA_MIRROR"] = str(need(mirror_root(), "public data mirror"))
    out = tmp_path_factory.mktemp("report_now")
    params = out / "params.yaml"
    params.write_text("10_now: {synth_subjects: 1, synth_methods: [precise, coarse, scale_pose], worst_k: 1}\n")
    res = report.build_report(out, only=["10_now"], params_file=params, echo=lambda s: None)
    assert [r.status for r in res] == ["ok"], res
    return out


def test_now_notebook_draws_the_cumulative_chart_and_the_heatmap(now_report):
    sync = _need_browser()
    with sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors = _page_errors(page)
        page.goto((now_report / "10_now.html").as_uri())
        page.wait_for_selector(".js-plotly-plot", timeout=30000)
        assert "SYNTHETIC NoW set" in page.inner_text("body")
        # the cumulative error chart: one drawn line per synthetic method
        names = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].filter(g => g.layout && "
                              "g.layout.xaxis && g.layout.xaxis.title && g.layout.xaxis.title.text === 'Error [mm]')"
                              ".map(g => g.data.map(t => t.name))")
        assert names and sorted(names[0]) == ["coarse", "precise", "scale_pose"], names
        chart = page.locator(".js-plotly-plot:has(.scatterlayer)").first
        assert chart.locator("path.js-line").count() >= 3
        # the per-vertex heatmap: a Mesh3d on a WebGL canvas, coloured
        mesh = page.locator(".js-plotly-plot:has(canvas)").first
        mesh.wait_for(timeout=30000)
        mesh.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)
        png = mesh.screenshot(path=str(REPO / "reports" / "browser_10_now_heatmap.png"))
        assert _coloured_fraction(png) > 0.05, "the WebGL heatmap drew nothing"
        assert errors == [], errors
        browser.close()
