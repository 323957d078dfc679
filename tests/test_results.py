"""facenb.results: table validation, queries, consistency checks (planted and real), CLI, plots."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from facenb import plot as P
from facenb import results as R
from facenb.cli import main
from facenb.errors import InputError

SRC_A = "example/leaderboard@0000000 table.ts"
SRC_B = "example/readme@1111111 README.md"


def _row(method, bench, split, region, stat, value, unit="mm", metric=None, source=SRC_A, stype="official leaderboard",
         verified="yes", claim_id="", note=""):
    metric = metric or {"realy": "region_error", "now": "scan_to_mesh", "aflw2000_3d": "nme_2d_68"}[bench]
    return dict(method=method, benchmark=bench, split=split, region=region, metric=metric, statistic=stat,
                value=value, unit=unit, source_type=stype, source_ref=source, verified=verified, claim_id=claim_id,
                note=note)


def _clean_rows() -> list[dict]:
    """A small table that passes every check (values consistent within and across sources)."""
    rows = []
    for reg, (m, med, sd) in {"nose": ("1.000", "0.950", "0.300"), "mouth": ("2.000", "1.900", "0.500"),
                              "forehead": ("3.000", "2.900", "0.600"), "cheek": ("4.000", "3.800", "0.700")}.items():
        rows += [_row("A", "realy", "frontal", reg, "mean", m), _row("A", "realy", "frontal", reg, "median", med),
                 _row("A", "realy", "frontal", reg, "std", sd)]
    rows.append(_row("A", "realy", "frontal", "all", "mean", "2.500"))
    rows += [_row("A", "aflw2000_3d", "original", b, "mean", v, unit="percent", source=SRC_B, stype="repository README")
             for b, v in (("0-30", "2.75"), ("30-60", "3.51"), ("60-90", "4.61"), ("balanced", "3.62"))]
    # two sources agreeing up to their printed precision: 1.53 vs 1.534 is not a conflict
    rows += [_row("B", "now", "test", "all", "mean", "1.53", source=SRC_A, stype="repository README"),
             _row("B", "now", "test", "all", "mean", "1.534", source=SRC_B, stype="third party"),
             _row("B", "now", "test", "all", "median", "1.21", source=SRC_A, stype="repository README"),
             _row("B", "now", "test", "all", "std", "1.31", source=SRC_A, stype="repository README")]
    # the seed page's own row, and another source agreeing with it
    rows += [_row("S", "now", "test", "all", "mean", "1.11", source="seeds/s.yaml", stype="third party", claim_id="s-now-mean"),
             _row("S", "now", "test", "all", "mean", "1.110", source=SRC_B, stype="repository README")]
    return rows


SEED_YAML = """paper: S
method: S
title: A seed paper
authors: [Ada Lovelace]
year: 2022
venue: ECCV 2022
code: null
seed_page: s.txt
page_source: test page
claims:
  - id: s-now-mean
    benchmark: now
    split: test
    region: all
    metric: scan_to_mesh
    statistic: mean
    value: 1.11
    unit: mm
    text: "1.11"
    page_label: "NoW | mean"
"""


def _write(tmp_path: Path, rows: list[dict], name="t.csv") -> Path:
    p = tmp_path / name
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, R.COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return p


@pytest.fixture
def seeds_dir(tmp_path) -> Path:
    d = tmp_path / "seeds"
    d.mkdir()
    (d / "s.yaml").write_text(SEED_YAML)
    return d


# ------------------------------------------------------------------------------------------ the real table
@pytest.fixture(scope="module")
def real():
    return R.load_reported(), R.load_seeds()


def test_real_table_loads_with_sources(real):
    df, _ = real
    assert not df.empty
    assert not df.duplicated(list(R.KEY)).any()
    assert set(df["source_type"]) <= set(R.SOURCE_TYPES)
    assert (df["source_ref"].str.len() > 0).all() and set(df["verified"]) <= {"yes", "no"}
    # coverage asked for: NoW test mean/median/std; REALY both views, all regions and statistics; AFLW bins
    now = R.query(df, benchmark="now", split="test")
    assert set(now["statistic"]) == {"mean", "median", "std"}
    for view in ("frontal", "side"):
        realy = R.query(df, benchmark="realy", split=view, source_type="official leaderboard")
        per_method = realy.groupby("method").size()
        assert (per_method >= 13).all() and len(per_method) >= 20
    aflw = R.query(df, benchmark="aflw2000_3d", metric="nme_2d_68")
    assert set(aflw["region"]) >= {"0-30", "30-60", "60-90", "balanced"} and set(aflw["split"]) == {"original"}
    stirling = R.query(df, benchmark="stirling")
    assert len(stirling) >= 2 and {"HQ", "LQ"} <= set(R.query(stirling, method="PRNet")["split"])
    assert len(R.query(df, benchmark="florence")) >= 1


def test_every_seed_claim_present(real):
    df, seeds = real
    assert sum(len(p.claims) for p in seeds) == 43
    assert R.check(df, seeds, kinds=["seed_missing"]) == []
    ids = set(df["claim_id"]) - {""}
    assert ids == {c.id for p in seeds for c in p.claims}


def test_real_findings_are_reported(real):
    """The published data contain real inconsistencies; the checker reports them (nothing fixed silently)."""
    df, seeds = real
    found = {(f.kind, f.method, f.split, f.key.split()[0]) for f in R.check(df, seeds)}
    assert ("realy_all_mismatch", "PSL", "frontal", "region=all") in found  # leaderboard mouth mean 1.708 typo
    assert ("realy_all_mismatch", "DECA-c", "frontal", "region=all") in found
    assert ("seed_vs_source", "MGCNet", "frontal", "region=all") in found  # seed page 1.787 vs leaderboard 1.774
    assert ("median_above_mean", "GANFit", "frontal", "region=forehead") in found
    assert ("median_above_mean", "3DDFA-V2", "frontal", "region=forehead") in found
    assert ("source_conflict", "RingNet", "test", "region=all") in found
    assert ("source_conflict", "MICA", "frontal", "region=mouth") in found
    for f in R.check(df, seeds):
        assert f.sources and len(f.sources) == len(f.values) and all(f.sources)


def test_pick_prefers_verified_official(real):
    df, _ = real
    lb = R.leaderboard(df, "realy", "frontal", methods=["PSL"])
    assert lb.table.loc["PSL", "mouth"] == pytest.approx(1.708)  # official (verified) over the unverified extract
    assert set(lb.rows["source_type"]) == {"official leaderboard"}
    now = R.leaderboard(df, "now", "test", methods=["FOCUS"])
    assert now.table.loc["FOCUS", "median"] == pytest.approx(1.04)
    assert set(now.rows["source_type"]) == {"repository README"}


# ----------------------------------------------------------------------------------------- schema errors
BAD = [
    ("unit", "cm", "unit 'cm'"),
    ("value", "1.2 mm", "is not a number"),
    ("value", "-0.5", "outside the plausible range"),
    ("benchmark", "nowx", "unknown benchmark"),
    ("split", "profile", "is not a realy split"),
    ("region", "chin", "is not a realy region"),
    ("statistic", "mode", "statistic 'mode'"),
    ("source_type", "blog", "source_type 'blog'"),
    ("verified", "maybe", "verified 'maybe'"),
    ("source_ref", "", "empty source_ref"),
]


@pytest.mark.parametrize("column,value,expected", BAD)
def test_schema_rejects_malformed_row(tmp_path, column, value, expected):
    rows = _clean_rows()
    rows[3] = dict(rows[3], **{column: value})
    p = _write(tmp_path, rows)
    with pytest.raises(InputError) as e:
        R.load_reported(p)
    msg = str(e.value)
    assert expected in msg
    assert msg.startswith(str(p)) and "row 5" in msg and "(fix: " in msg and "\n" not in msg


def test_schema_rejects_duplicate_key_and_bad_header(tmp_path):
    rows = _clean_rows()
    p = _write(tmp_path, rows + [dict(rows[0], value="1.001")])
    with pytest.raises(InputError, match=r"row \d+ repeats the key of t.csv row 2"):
        R.load_reported(p)
    p.write_text(p.read_text().replace("source_type", "kind", 1))
    with pytest.raises(InputError, match="missing column"):
        R.load_reported(p)


def test_cli_malformed_row_exit_2(tmp_path, capsys, seeds_dir):
    rows = _clean_rows()
    rows[0]["unit"] = "percent"
    p = _write(tmp_path, rows)
    assert main(["results", "check", "--data", str(p), "--seeds", str(seeds_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facenb: error: ") and "row 2" in err[0] and "fix:" in err[0]


# ------------------------------------------------------------------------------------- planted findings
def test_clean_data_passes(tmp_path, seeds_dir):
    df = R.load_reported(_write(tmp_path, _clean_rows()))
    assert R.check(df, R.load_seeds(seeds_dir)) == []


def _plant(rows, method, region, stat, value, bench="realy"):
    for r in rows:
        if (r["method"], r["benchmark"], r["region"], r["statistic"]) == (method, bench, region, stat):
            r["value"] = value
            return rows
    raise AssertionError("row to plant not found")


PLANTS = {
    "realy_all_mismatch": lambda rows: _plant(rows, "A", "all", "mean", "2.600"),
    "aflw_balanced_mismatch": lambda rows: _plant(rows, "A", "balanced", "mean", "3.70", bench="aflw2000_3d"),
    "seed_vs_source": lambda rows: [dict(r, value="1.20") if (r["method"], r["source_ref"]) == ("S", SRC_B) else r
                                    for r in rows],
    "source_conflict": lambda rows: [dict(r, value="1.60") if (r["method"], r["source_ref"], r["statistic"]) == ("B", SRC_B, "mean")
                                     else r for r in rows],
    "median_above_mean": lambda rows: _plant(rows, "A", "forehead", "median", "3.700"),
    "seed_missing": lambda rows: [dict(r, claim_id="") if r["claim_id"] else r for r in rows],
}


@pytest.mark.parametrize("kind", sorted(PLANTS))
def test_planted_inconsistency_is_found(tmp_path, seeds_dir, kind):
    rows = PLANTS[kind](_clean_rows())
    df = R.load_reported(_write(tmp_path, rows))
    findings = R.check(df, R.load_seeds(seeds_dir))
    kinds = [f.kind for f in findings]
    assert kind in kinds, findings
    f = findings[kinds.index(kind)]
    assert len(f.values) == len(f.sources) >= (1 if kind == "seed_missing" else 2)
    if kind in ("seed_vs_source", "source_conflict"):
        assert len(set(f.sources)) == 2  # names both sources
    if kind == "seed_missing":  # the claim has no table row; the same value from another source is then no conflict
        assert set(kinds) == {"seed_missing"}
    else:
        assert set(kinds) == {kind}


def test_median_above_mean_without_std(tmp_path):
    rows = [_row("C", "now", "test", "all", "mean", "1.00"), _row("C", "now", "test", "all", "median", "1.15")]
    df = R.load_reported(_write(tmp_path, rows))
    (f,) = R.check(df)
    assert f.kind == "median_above_mean" and "implausible" in f.detail
    assert R.check(df, rel_margin=0.2) == []
    # with a std the bound is |median - mean| <= std: 0.15 <= 0.2 is possible, so no finding
    df2 = R.load_reported(_write(tmp_path, rows + [_row("C", "now", "test", "all", "std", "0.20")], "u.csv"))
    assert R.check(df2) == []


def test_zero_padded_rows_use_their_real_precision(tmp_path):
    # 3.780, 4.540, 7.930 -> 5.420 is a 2-decimal table padded to 3 decimals: (3.78 + 4.54 + 7.93) / 3 = 5.4167
    rows = [_row("D", "aflw2000_3d", "original", b, "mean", v, unit="percent")
            for b, v in (("0-30", "3.780"), ("30-60", "4.540"), ("60-90", "7.930"), ("balanced", "5.420"))]
    assert R.check(R.load_reported(_write(tmp_path, rows))) == []
    rows[-1]["value"] = "5.430"
    assert [f.kind for f in R.check(R.load_reported(_write(tmp_path, rows, "v.csv")))] == ["aflw_balanced_mismatch"]


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_check_json(tmp_path, capsys):
    out = tmp_path / "findings.json"
    assert main(["results", "check", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert isinstance(data, list) and data
    for d in data:
        assert {"kind", "method", "benchmark", "split", "key", "values", "sources"} <= set(d)
        assert d["kind"] in R.KINDS and d["sources"]
    assert "finding(s)" in capsys.readouterr().out
    assert main(["results", "check", "--strict"]) == 1


def test_cli_list(capsys):
    assert main(["results", "list", "--benchmark", "now", "--method", "MICA"]) == 0
    out = capsys.readouterr().out
    assert "MICA" in out and "0.9" in out and "(3 rows)" in out


# ---------------------------------------------------------------------------------------------- plots
def test_plots_mark_highlighted_methods(real):
    df, _ = real
    hi = ["MICA", "PRNet"]
    realy = R.leaderboard(df, "realy", "frontal")
    fig = P.realy_heatmap(realy.table, highlight=hi)
    labels = list(fig.data[0].y)
    assert f"{P.SEED_MARK}MICA" in labels and "HRN" in labels
    assert len(fig.layout.shapes) == 2  # one frame per highlighted row
    fig = P.ranked_bars(realy.table["all"], highlight=hi, flagged=["PSL"])
    ys = list(fig.data[0].y)
    assert ys[0].startswith("1. ") and any(y.endswith("PSL (!)") for y in ys)
    assert sum(c == "#d62728" for c in fig.data[0].marker.color) == 2
    now = R.leaderboard(df, "now", "test")
    fig = P.now_bars(now.table, highlight=hi)
    assert [t.name for t in fig.data] == ["median", "mean", "std"]
    assert f"{P.SEED_MARK}PRNet" in list(fig.data[0].x)
    aflw = R.leaderboard(df, "aflw2000_3d", "original")
    fig = P.aflw_pose_bins(aflw.table, highlight=hi)
    starred = [t for t in fig.data if t.name.startswith(P.SEED_MARK)]
    assert [t.name for t in starred] == [f"{P.SEED_MARK}PRNet"] and starred[0].line.width > fig.data[0].line.width


def test_default_table_and_seeds_are_package_resources():
    from facenb import data

    assert R.default_data_dir() == data.resource_dir("reported")
    assert R.default_seeds_dir() == data.resource_dir("seeds")
    assert len(R.load_reported()) == len(R.load_reported(R.default_data_dir())) > 0
