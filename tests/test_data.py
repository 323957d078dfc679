"""facenb.data: registry, cache, mirror copies and downloads from a local HTTP server on 127.0.0.1.

Network tests never leave the machine: a ``http.server`` thread serves synthetic files (listed in a temporary
registry through ``FACENB_DATA_REGISTRY``) or copies of small mirror files, and ``base_url`` /
``FACENB_DATA_BASE_URL`` redirects the registry's origin URLs to it. Every test has bounded timeouts and the
server is shut down by its fixture.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from facenb import data
from facenb.cli import main
from facenb.errors import InputError

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GATED = {"now": ("now_dataset_dir", "now_predictions_dir"), "realy": ("realy_dir", "realy_predictions_dir"),
         "stirling": ("stirling_dir", None), "florence": ("florence_dir", None),
         "facescape": ("facescape_dir", None)}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def files_under(root: Path) -> list[str]:
    """Every file (hidden temporaries included) under ``root``, relative, sorted."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------ the packaged registry
def test_registry_is_consistent():
    ds = data.datasets()
    names = [d.name for d in ds]
    assert len(names) == len(set(names)) and "all" not in names
    public = data.public_datasets()
    assert {d.name for d in public} >= {"aflw2000_3d", "realy_templates", "facescape_benchmark", "james_scan"}
    for d in public:
        assert d.files and d.description and d.enables and d.licence and d.licence_note, d.name
        assert len({f.name for f in d.files}) == len(d.files)
        for f in d.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), (d.name, f.name)
            assert re.fullmatch(r"[0-9a-f]{40}", f.commit), (d.name, f.name)
            assert f.bytes > 0
            assert f.url == f"{data.ORIGIN_BASE}/{f.repo}/{f.commit}/{f.path}"
            assert not f.name.startswith("/") and ".." not in f.name.split("/")
    gated = {d.name: d for d in data.gated_datasets()}
    assert set(gated) == set(GATED)
    for name, (param, pred) in GATED.items():
        d = gated[name]
        assert d.files == () and d.how_to_obtain and d.licence and d.description
        assert (d.notebook_parameter, d.predictions_parameter) == (param, pred)
        assert "http" not in d.how_to_obtain  # in words; no unverified links
        msg = d.gated_message()
        assert "\n" not in msg and param in msg and "licence-gated" in msg


def test_registry_matches_manifest(data_mirror):
    """Every fact in the registry is the manifest's (name, size, sha256, repo, commit, path, url, licence)."""
    with (data_mirror / "MANIFEST.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    reg = {(d.name, f.name): (d, f) for d in data.public_datasets() for f in d.files}
    assert len(reg) == len(rows)
    for r in rows:
        d, f = reg[(r["dataset"], r["file"])]
        assert (f.bytes, f.sha256, f.repo, f.commit, f.path, f.url) == (
            int(r["bytes"]), r["sha256"], r["repo"], r["commit"], r["path"], r["url"])
        assert d.licence_note == r["licence"]


def test_registry_file_is_what_the_generator_writes(data_mirror, tmp_path):
    spec = importlib.util.spec_from_file_location("make_registry", REPO / "facenb" / "registry" / "make_registry.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "datasets.yaml"
    assert mod.main([str(data_mirror / "MANIFEST.csv"), "--out", str(out)]) == 0
    assert out.read_text() == (REPO / "facenb" / "registry" / "datasets.yaml").read_text()


def test_unknown_dataset_and_file():
    with pytest.raises(InputError, match="unknown dataset 'nope'.*aflw2000_3d"):
        data.dataset("nope")
    with pytest.raises(InputError, match="has no file 'x.npy'"):
        data.dataset("aflw2000_3d").file("x.npy")


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FACENB_DATA")
    # without FACENB_DATA: the user cache, never a folder of the package or of the checkout
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "facenb"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "facenb"


def test_resource_dirs_hold_the_packaged_data():
    assert sorted(p.name for p in data.resource_dir("reported").glob("*.csv"))
    assert {p.stem for p in data.resource_dir("seeds").glob("*.yaml")} == {"focus", "mgcnet", "mica", "prnet", "psl"}
    assert (data.resource_dir("notebooks") / "params.yaml").is_file()
    # the editable install maps the top-level folders: the same files as the checkout (no copy)
    assert (data.resource_dir("seeds") / "psl.yaml").read_bytes() == (REPO / "seeds" / "psl.yaml").read_bytes()
    with pytest.raises(InputError, match="unknown package resource 'x'"):
        data.resource_dir("x")


def test_require(monkeypatch, tmp_path, data_mirror):
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))
    monkeypatch.delenv("FACENB_DATA_MIRROR", raising=False)
    with pytest.raises(InputError, match=r"dataset aflw2000_3d is not available.*run `facenb data fetch aflw2000_3d`"):
        data.require("aflw2000_3d")
    with pytest.raises(InputError, match="realy is licence-gated"):
        data.require("realy")
    with pytest.raises(InputError, match="aflw2000_3d folder not found"):
        data.require("aflw2000_3d", tmp_path / "typo")  # a given folder must exist: no silent fall-back
    assert data.require("aflw2000_3d", tmp_path) == tmp_path
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    assert data.require("aflw2000_3d") == data_mirror / "aflw2000_3d"


def test_conformance_root(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FACENB_CONFORMANCE", raising=False)
    assert data.conformance_root() is None
    monkeypatch.setenv("FACENB_CONFORMANCE", str(tmp_path / "absent"))
    assert data.conformance_root() is None
    monkeypatch.setenv("FACENB_CONFORMANCE", str(tmp_path))
    assert data.conformance_root() == tmp_path
    own = tmp_path / "own"
    own.mkdir()
    assert data.conformance_root(own) == own
    with pytest.raises(InputError, match="conformance folder not found"):
        data.conformance_root(tmp_path / "nope")
    from facenb.cli import main

    assert main(["data", "list"]) == 0
    assert f"conformance cases: {tmp_path}  (FACENB_CONFORMANCE)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ the shared mirror
@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("FACENB_DATA", str(root))
    for var in ("FACENB_DATA_MIRROR", "FACENB_DATA_BASE_URL", "FACENB_DATA_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.mark.parametrize("name", ["aflw2000_3d", "realy_templates"])
def test_fetch_from_mirror(data_mirror, cache, name):
    d = data.dataset(name)
    assert not data.available(name)
    with pytest.raises(InputError, match=rf"run `facenb data fetch {name}`"):
        data.path(name)
    got = data.fetch(name, mirror=data_mirror, progress=False)
    assert got == [cache / name / f.name for f in d.files]
    for f in d.files:  # independent check of what landed in the cache
        p = cache / name / f.name
        assert p.stat().st_size == f.bytes and sha(p.read_bytes()) == f.sha256
        assert (cache / name / f.name).read_bytes() == (data_mirror / name / f.name).read_bytes()
    assert files_under(cache / name) == sorted(f.name for f in d.files)  # no temporaries left
    assert data.available(name) and data.path(name) == cache / name
    assert data.path(name, d.files[0].name) == cache / name / d.files[0].name
    mtimes = [(cache / name / f.name).stat().st_mtime_ns for f in d.files]
    data.fetch(name, mirror=data_mirror, progress=False)  # already verified: nothing rewritten
    assert [(cache / name / f.name).stat().st_mtime_ns for f in d.files] == mtimes


def test_fetch_all_cli_from_env_mirror(data_mirror, cache, monkeypatch, capsys):
    """`make report` runs `facenb data fetch all` with FACENB_DATA_MIRROR set: every public dataset, gated skipped."""
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    assert main(["data", "fetch", "all"]) == 0
    err = capsys.readouterr().err
    for d in data.public_datasets():
        assert data.available(d.name), d.name
    for name, (param, _) in GATED.items():
        assert re.search(rf"^{name}: skipped \(licence-gated.*{param}", err, re.M), name
        assert not (cache / name).exists()
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for d in data.public_datasets():
        assert re.search(rf"^{d.name}\s+{len(d.files)}\s.*\sverified\s", out, re.M), d.name


def test_locate(data_mirror, cache, monkeypatch, tmp_path):
    assert data.locate("realy_templates") is None
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    assert data.locate("realy_templates") == data_mirror / "realy_templates"
    own = tmp_path / "mine"
    own.mkdir()
    assert data.locate("realy_templates", own) == own
    assert data.locate("realy", str(own)) == own
    with pytest.warns(UserWarning, match="not found"):
        assert data.locate("realy", tmp_path / "absent") is None
    data.fetch("realy_templates", progress=False)
    assert data.locate("realy_templates") == cache / "realy_templates"  # the cache wins over the mirror
    monkeypatch.delenv("FACENB_DATA_MIRROR")
    assert data.locate("now") is None


# ------------------------------------------------------------------------------------ a local HTTP server
class _Origin:
    """What the test server serves: ``files[url_path] = bytes`` and ``mode[url_path]``."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, str] = {}
        self.requests: list[str] = []
        self.base = ""


@pytest.fixture
def origin():
    state = _Origin()

    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def do_GET(self):  # noqa: N802 (http.server API)
            state.requests.append(self.path)
            body = state.files.get(self.path)
            mode = state.mode.get(self.path, "ok")
            if body is None or mode == "404":
                self.send_error(404, "Not Found")
                return
            if mode == "hang":
                time.sleep(1.5)
                return
            if mode == "corrupt":  # same length, one byte flipped
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            if mode == "extra":
                body = body + b"trailing junk"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "truncate":  # promise the whole body, send part of it, drop the connection
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# synthetic datasets: deterministic bytes, facts written into a temporary registry
SYNTH = {
    "tiny": {"a.bin": bytes(range(256)) * 40, "sub/b.txt": b"facenb test file\n" * 500},
    "tiny2": {"c.npy": hashlib.sha256(b"seed").digest() * 1000},
}


def _url_path(name: str, file: str) -> str:
    return f"/facenb-tests/{name}/{COMMIT}/files/{file}"


@pytest.fixture
def synth(cache, tmp_path, monkeypatch, origin):
    """A temporary registry of two small public datasets and one gated one, served by ``origin``."""
    entries = []
    for name, files in SYNTH.items():
        entries.append({"name": name, "gated": False, "description": f"synthetic {name}", "enables": "tests",
                        "licence": "test data", "licence_note": "generated by the test", "files": [
                            {"name": fn, "bytes": len(b), "sha256": sha(b), "repo": f"facenb-tests/{name}",
                             "commit": COMMIT, "path": f"files/{fn}",
                             "url": f"{data.ORIGIN_BASE}{_url_path(name, fn)}"} for fn, b in files.items()]})
        for fn, b in files.items():
            origin.files[_url_path(name, fn)] = b
    entries.append({"name": "secret", "gated": True, "description": "gated", "licence": "by request",
                    "how_to_obtain": "Ask its owners for a copy.", "notebook_parameter": "secret_dir", "files": []})
    reg = tmp_path / "registry.yaml"
    reg.write_text(yaml.safe_dump({"schema": 1, "datasets": entries}))
    monkeypatch.setenv("FACENB_DATA_REGISTRY", str(reg))
    monkeypatch.setenv("FACENB_DATA_BASE_URL", origin.base)
    return origin


def test_download_from_local_server(synth, cache):
    paths = data.fetch("tiny", progress=False, timeout=5)
    assert paths == [cache / "tiny" / "a.bin", cache / "tiny" / "sub" / "b.txt"]
    for fn, b in SYNTH["tiny"].items():
        assert (cache / "tiny" / fn).read_bytes() == b
    assert files_under(cache / "tiny") == sorted(SYNTH["tiny"])
    assert sorted(synth.requests) == sorted(_url_path("tiny", fn) for fn in SYNTH["tiny"])
    assert data.available("tiny") and not data.available("tiny2")
    n = len(synth.requests)
    data.fetch("tiny", progress=False, timeout=5)  # cached and verified: no request
    assert len(synth.requests) == n
    data.fetch("tiny", force=True, progress=False, timeout=5)
    assert len(synth.requests) == n + 2


def test_base_url_argument_overrides_env(synth, cache, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    data.fetch("tiny2", progress=False, timeout=5, base_url=synth.base)
    assert data.available("tiny2")


@pytest.mark.parametrize("mode, pattern", [
    ("corrupt", r"sha256 mismatch for tiny/a\.bin: expected [0-9a-f]{64}, got [0-9a-f]{64}"),
    ("extra", r"size mismatch for tiny/a\.bin: expected 10240 bytes, got 10241"),
])
def test_checksum_mismatch_leaves_nothing(synth, cache, mode, pattern):
    synth.mode[_url_path("tiny", "a.bin")] = mode
    with pytest.raises(InputError, match=pattern) as exc:
        data.fetch("tiny", progress=False, timeout=5)
    msg = str(exc.value)
    assert "\n" not in msg and synth.base in msg
    if mode == "corrupt":
        assert sha(SYNTH["tiny"]["a.bin"]) in msg
    assert files_under(cache / "tiny") == []  # neither the file nor its temporary
    assert not data.available("tiny")


def test_interrupted_download_then_retry(synth, cache):
    synth.mode[_url_path("tiny", "sub/b.txt")] = "truncate"
    with pytest.raises(InputError, match=r"cannot download .*sub/b\.txt \(connection closed after \d+ of 8500 "
                                         r"bytes\); check the network or use --mirror DIR / set FACENB_DATA_MIRROR"):
        data.fetch("tiny", progress=False, timeout=5)
    # a.bin (fetched before) is complete and verified; b.txt left nothing behind, not even a temporary
    assert files_under(cache / "tiny") == ["a.bin"]
    with pytest.raises(InputError, match=r"tiny/sub/b\.txt is not in the cache"):
        data.path("tiny", "sub/b.txt")
    synth.mode.clear()
    data.fetch("tiny", progress=False, timeout=5)
    assert files_under(cache / "tiny") == sorted(SYNTH["tiny"]) and data.available("tiny")


def test_http_error(synth, cache):
    synth.mode[_url_path("tiny2", "c.npy")] = "404"
    with pytest.raises(InputError, match=r"cannot download .*c\.npy \(HTTP 404 Not Found\)"):
        data.fetch("tiny2", progress=False, timeout=5)
    assert files_under(cache / "tiny2") == []


def test_read_timeout_is_bounded(synth, cache):
    synth.mode[_url_path("tiny2", "c.npy")] = "hang"
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"cannot download .*\(timed out"):
        data.fetch("tiny2", progress=False, timeout=0.3)
    assert time.monotonic() - t0 < 1.4  # the server would answer after 1.5 s
    assert files_under(cache / "tiny2") == []


def test_offline_one_line(synth, cache, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(InputError) as exc:
        data.fetch("tiny", progress=False, timeout=5, base_url=url)
    msg = str(exc.value)
    assert "\n" not in msg
    assert re.fullmatch(rf"cannot download {re.escape(url)}/\S+ \([^)]*refused[^)]*\); check the network or use "
                        r"--mirror DIR / set FACENB_DATA_MIRROR", msg), msg
    assert files_under(cache) == []


def test_offline_fetch_all_stops_trying_the_origin(synth, cache, capsys):
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(InputError, match=r"could not fetch 2 dataset\(s\) \(tiny, tiny2\); first error: "
                                         r"cannot download") as exc:
        data.fetch("all", progress=True, timeout=5, base_url=url)
    assert "\n" not in str(exc.value)
    err = capsys.readouterr().err
    assert re.search(r"^tiny: FAILED: cannot download \S+/tiny/\S+ \([^)]*refused", err, re.M), err
    assert re.search(r"^tiny2: FAILED: cannot download \S+/tiny2/\S+c\.npy \(not tried: .*refused.* for the "
                     r"previous download\)", err, re.M), err
    assert "secret: skipped (licence-gated" in err
    assert files_under(cache) == []


def test_fetch_all_continues_past_a_failure(synth, cache):
    synth.mode[_url_path("tiny", "a.bin")] = "corrupt"
    with pytest.raises(InputError, match=r"could not fetch 1 dataset\(s\) \(tiny\); first error: .*sha256 mismatch"):
        data.fetch("all", progress=False, timeout=5)
    assert data.available("tiny2") and not data.available("tiny")


def test_fetch_all_skips_gated(synth, cache, capsys):
    paths = data.fetch("all", timeout=5)
    assert len(paths) == 3 and data.available("tiny") and data.available("tiny2")
    err = capsys.readouterr().err
    assert re.search(r"^secret: skipped \(licence-gated.*secret_dir", err, re.M)
    assert re.search(r"^tiny: fetched 2 of 2 files .*from the origin.*sha256 verified", err, re.M)


def test_gated_is_never_downloaded(synth, cache):
    for call in (lambda: data.fetch("secret"), lambda: data.fetch(["tiny", "secret"]), lambda: data.path("secret")):
        with pytest.raises(InputError, match=r"secret is licence-gated and never downloaded by facenb: Ask its "
                                             r"owners for a copy; then point a notebook at it with the parameter "
                                             r"secret_dir"):
            call()
    assert not data.available("secret") and synth.requests == [] and files_under(cache) == []


def test_corrupted_cache_is_detected_and_repaired(synth, cache):
    data.fetch("tiny", progress=False, timeout=5)
    p = cache / "tiny" / "a.bin"
    p.write_bytes(b"\0" * p.stat().st_size)  # same size, other content
    assert not data.available("tiny")
    with pytest.raises(InputError, match=r"tiny/a\.bin in the cache fails its sha256 check.*run `facenb data fetch "
                                         r"tiny`"):
        data.path("tiny", "a.bin")
    with pytest.raises(InputError, match=r"dataset tiny 1 cached file\(s\) fail their sha256 check \(1 of 2"):
        data.path("tiny")
    data.fetch("tiny", progress=False, timeout=5)
    assert p.read_bytes() == SYNTH["tiny"]["a.bin"] and data.available("tiny")


def test_mirror_copy_and_fallback(synth, cache, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    (mirror / "tiny" / "a.bin").write_bytes(SYNTH["tiny"]["a.bin"])  # sub/b.txt absent from the mirror
    data.fetch("tiny", mirror=mirror, progress=False, timeout=5)
    assert synth.requests == [_url_path("tiny", "sub/b.txt")]  # only the missing file came from the origin
    assert data.available("tiny")


def test_damaged_mirror_copy(synth, cache, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "tiny2").mkdir(parents=True)
    bad = mirror / "tiny2" / "c.npy"
    bad.write_bytes(b"x" * len(SYNTH["tiny2"]["c.npy"]))
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(mirror))
    with pytest.raises(InputError, match=rf"^{re.escape(str(bad))}: sha256 mismatch for tiny2/c\.npy: expected "
                                         r"[0-9a-f]{64}, got [0-9a-f]{64} \(fix: the mirror copy is damaged"):
        data.fetch("tiny2", progress=False, timeout=5)
    assert files_under(cache / "tiny2") == [] and synth.requests == []


def test_missing_mirror(synth, cache, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="mirror folder not found"):
        data.fetch("tiny2", mirror=tmp_path / "nowhere", progress=False)
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(tmp_path / "nowhere"))  # as the Makefile may set it
    data.fetch("tiny2", progress=False, timeout=5)  # ignored: falls back to the origin
    assert data.available("tiny2")


def test_stale_temporaries_are_cleaned(synth, cache):
    stale = cache / "tiny2" / ".c.npy.abc123.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    data.fetch("tiny2", progress=False, timeout=5)
    assert files_under(cache / "tiny2") == ["c.npy"]


def test_unsafe_or_bad_registry(tmp_path, monkeypatch):
    reg = tmp_path / "r.yaml"
    monkeypatch.setenv("FACENB_DATA_REGISTRY", str(reg))
    entry = {"name": "x", "files": [{"name": "../evil", "bytes": 1, "sha256": "0" * 64, "repo": "a/b",
                                     "commit": COMMIT, "path": "p", "url": f"https://h/a/b/{COMMIT}/p"}]}
    reg.write_text(yaml.safe_dump({"datasets": [entry]}))
    with pytest.raises(InputError, match=r"r\.yaml: unsafe file name '\.\./evil'"):
        data.datasets()
    entry["files"][0].update(name="ok", sha256="abc")
    reg.write_text(yaml.safe_dump({"datasets": [entry]}))
    with pytest.raises(InputError, match=r"bad registry entry #0 .*sha256 64 hex"):
        data.datasets()
    reg.write_text("datasets: [unclosed")
    with pytest.raises(InputError, match=r"r\.yaml: cannot read the dataset registry"):
        data.datasets()


# ------------------------------------------------------------------------------------ real registry over HTTP
def test_real_registry_over_local_http(data_mirror, cache, origin):
    """The packaged URLs, redirected to 127.0.0.1: repo/commit/path layout served from mirror copies."""
    d = data.dataset("aflw2000_3d")
    for f in d.files:
        origin.files[f"/{f.repo}/{f.commit}/{f.path}"] = (data_mirror / d.name / f.name).read_bytes()
    data.fetch("aflw2000_3d", base_url=origin.base, progress=False, timeout=10)
    assert len(origin.requests) == len(d.files)
    assert all(sha((cache / d.name / f.name).read_bytes()) == f.sha256 for f in d.files)


# ------------------------------------------------------------------------------------ CLI
def test_cli(synth, cache, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^tiny\s+2\s+\S+ kB\s+no\s+test data$", out, re.M)
    assert "secret  [parameter: secret_dir]" in out and "obtain: Ask its owners for a copy." in out
    assert main(["data", "path", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facenb: error: ") and "run `facenb data fetch tiny`" in err
    assert main(["data", "fetch", "tiny", "--quiet", "--timeout", "5"]) == 0
    assert main(["data", "path", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "tiny")
    assert main(["data", "path", "tiny", "sub/b.txt"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "tiny" / "sub" / "b.txt")
    assert main(["data", "list"]) == 0
    assert re.search(r"^tiny\s+2\s+\S+ kB\s+verified\s", capsys.readouterr().out, re.M)


@pytest.mark.parametrize("argv, pattern", [
    (["data", "fetch", "nope"], r"unknown dataset 'nope'"),
    (["data", "fetch", "secret"], r"secret is licence-gated"),
    (["data", "fetch", "tiny", "--mirror", "/nonexistent/mirror"], r"mirror folder not found"),
    (["data", "path", "tiny", "zzz"], r"dataset tiny has no file 'zzz'"),
])
def test_cli_errors(synth, cache, capsys, argv, pattern):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facenb: error: ") and re.search(pattern, err), err


def test_cli_offline(synth, cache, capsys, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(["data", "fetch", "tiny", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.match(r"facenb: error: cannot download http://127\.0\.0\.1:\d+/\S+ \(.*\); check the network", err)
    assert files_under(cache) == []
