"""Seed papers: every number on the five seed pages is a claim in seeds/*.yaml, and each claim reads off its page."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from facenb import results as R
from facenb.errors import InputError

EXPECTED = {"MICA": 5, "MGCNet": 5, "FOCUS": 3, "PSL": 2, "PRNet": 28}
# Task prefixes of the Papers with Code archive result lines ("<task><dataset><metric><value><model>").
PWC_TASKS = ("Facial Recognition and Modelling", "3D Face Reconstruction", "3D Face Modelling", "Face Reconstruction", "3D")


@pytest.fixture(scope="module")
def seeds():
    return R.load_seeds()


def test_forty_three_claims(seeds):
    counts = {p.paper: len(p.claims) for p in seeds}
    assert counts == EXPECTED
    assert sum(counts.values()) == 43
    ids = [c.id for p in seeds for c in p.claims]
    assert len(set(ids)) == 43


def test_claim_fields(seeds):
    for p in seeds:
        assert p.title and p.authors and p.venue and 2015 <= p.year <= 2025
        assert p.code is None or p.code.startswith("https://github.com/")
        for c in p.claims:
            assert c.statistic in R.STATISTICS and c.unit in ("mm", "percent")
            assert float(c.text.rstrip("%")) == c.value
            if c.std is not None:  # a mean printed with its std: the std is also its own claim
                twin = [d for d in p.claims if d.id == c.id.replace("-mean", "-std")]
                assert twin and twin[0].statistic == "std" and twin[0].value == c.std


def _pwc_results(page: str) -> set[str]:
    """Distinct '<dataset><metric><value><model>' results of a Papers with Code archive page."""
    body = page.split("TaskDatasetMetricValueModel", 1)[1].split("Related Papers", 1)[0]
    out = set()
    for line in filter(None, (ln.strip() for ln in body.splitlines())):
        task = max((t for t in PWC_TASKS if line.startswith(t)), key=len)
        out.add(line[len(task):])
    return out


def _table_rows(page: str) -> dict[str, tuple[str, str]]:
    """benchmark -> (method label, metrics text) of a '| Benchmark | Methodology | Metrics |' page."""
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("Benchmark", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_claims_read_off_the_pages(seeds, seed_pages: Path):
    for p in seeds:
        page = (seed_pages / p.seed_page).read_text(encoding="utf-8")
        assert p.title in page
        for a in p.authors:
            assert a in page, (p.paper, a)
        if "TaskDatasetMetricValueModel" in page:
            results = _pwc_results(page)
            # every distinct result on the page is a claim, and no claim is invented
            assert len(results) == len(p.claims), (p.paper, sorted(results))
            for c in p.claims:
                dataset, metric = (s.strip() for s in c.page_label.split("|"))
                assert f"{dataset}{metric}{c.text}{p.method}" in results, (p.paper, c.id)
        else:
            rows = _table_rows(page)
            numbers = sum(len(re.findall(r"\d+\.\d+", m)) for _, m in rows.values())
            assert numbers == len(p.claims), (p.paper, numbers)
            for c in p.claims:
                bench, mlabel, metric = (s.strip() for s in c.page_label.split("|"))
                assert rows[bench][0] == mlabel, (c.id, rows[bench])
                text = rows[bench][1]
                if metric.endswith("(+-std)"):
                    base = metric[: -len("(+-std)")].strip()
                    pat = re.escape(base) + r":\s*[\d.]+%?\s*\(\u00b1" + re.escape(c.text) + r"\)"
                else:
                    pat = re.escape(metric) + r"\s*:\s*" + re.escape(c.text) + r"(?![\d])"
                assert re.search(pat, text), (c.id, pat, text)


def test_claims_are_in_the_table(seeds):
    df = R.load_reported()
    for p in seeds:
        for c in p.claims:
            rows = df[df["claim_id"] == c.id]
            assert len(rows) == 1, c.id
            r = rows.iloc[0]
            assert (r.method, r.benchmark, r.split, r.region, r.metric, r.statistic, r.unit) == (
                p.method, c.benchmark, c.split, c.region, c.metric, c.statistic, c.unit), c.id
            assert r.value == c.value, c.id
            assert r.source_ref.startswith(f"seeds/{Path(p.file).name}")


def test_bad_seed_yaml(tmp_path):
    good = Path(R.default_seeds_dir(), "psl.yaml").read_text()
    bad = tmp_path / "psl.yaml"
    bad.write_text(good.replace("unit: mm", "unit: cm", 1))
    with pytest.raises(InputError) as e:
        R.load_seeds(tmp_path)
    msg = str(e.value)
    assert "psl.yaml" in msg and "claim 1" in msg and "fix:" in msg and "\n" not in msg
    bad.write_text(good.replace('text: "1.882"', 'text: "1.82"'))
    with pytest.raises(InputError, match="does not read as value"):
        R.load_seeds(tmp_path)
    bad.write_text(good.replace("venue:", "place:"))
    with pytest.raises(InputError, match="missing field"):
        R.load_seeds(tmp_path)
