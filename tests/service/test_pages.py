"""The web page, the docs and the static files over HTTP (no browser): local assets only, a Content-Security-Policy
that admits exactly the pages' own inline scripts, no directory listing, and package data that ships every file.
The page itself is driven in a real browser by ``test_web_page.py``."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from service.routes.pages import INLINE_SCRIPT, STATIC_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE_ASSET_BUDGET = 1_500_000  # bytes: the page's own files plus three.js (the docs' libraries are not counted)
EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def policy(response) -> dict[str, list[str]]:
    directives = [d.strip().split() for d in response.headers["content-security-policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def script_hashes(html: str) -> set[str]:
    return {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
            for s in INLINE_SCRIPT.findall(html)}


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc"])
def test_pages_load_only_local_assets_under_a_policy(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not EXTERNAL_URL.search(r.text), EXTERNAL_URL.search(r.text)
    csp = policy(r)
    assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    # scripts: this origin plus a hash for each inline script of this very page, nothing else
    assert set(csp["script-src"]) == {"'self'"} | script_hashes(r.text)
    assert r.headers["x-content-type-options"] == "nosniff"
    for url in re.findall(r"""(?:src|href)="([^"]+)\"""", r.text):
        if not url.startswith("#"):
            asset = client.get(url if url.startswith("/") else f"/{url}")
            assert asset.status_code == 200, url


def test_page_policy_keeps_styles_and_scripts_out_of_the_markup(client):
    r = client.get("/")
    assert policy(r)["style-src"] == ["'self'"]
    assert " style=" not in r.text and "onclick" not in r.text.lower()
    importmap = re.search(r'<script type="importmap">(.*?)</script>', r.text, re.DOTALL).group(1)
    assert importmap.strip().startswith("{") and "three.module.min.js" in importmap


def test_docs_use_the_vendored_libraries(client):
    docs, redoc = client.get("/docs").text, client.get("/redoc").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "/static/vendor/swagger-ui/swagger-ui.css" in docs
    assert '"validatorUrl": null' in docs  # no badge from validator.swagger.io
    assert "/static/vendor/redoc/redoc.standalone.js" in redoc and "fonts.googleapis" not in redoc
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_static_files_only(client):
    js = client.get("/static/js/main.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["x-content-type-options"] == "nosniff"
    for path in ("/static/", "/static/js", "/static/js/", "/static/vendor/", "/static/missing.js",
                 "/static/../main.py", "/static/%2e%2e/main.py", "/static/..%2fmain.py"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "main.js" not in r.text and "create_app" not in r.text


def test_vendored_libraries_carry_licence_and_version():
    vendor = STATIC_DIR / "vendor"
    versions = (vendor / "VERSIONS.md").read_text()
    for folder, package in (("three", "three"), ("swagger-ui", "swagger-ui-dist"), ("redoc", "redoc")):
        assert (vendor / folder / "LICENSE").is_file(), folder
        assert re.search(rf"^\| {re.escape(package)} \| \d+\.\d+\.\d+ \| ", versions, re.MULTILINE), package


def test_page_assets_fit_the_budget():
    own = [p for p in STATIC_DIR.rglob("*") if p.is_file() and not {"swagger-ui", "redoc"} & set(p.parts)]
    total = sum(p.stat().st_size for p in own)
    print(f"\npage assets: {len(own)} files, {total} bytes")
    assert total < PAGE_ASSET_BUDGET, total


def test_package_data_ships_every_static_file():
    """A non-editable install (the Docker image) serves the page: pyproject's package-data covers every file."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["service"]
    service = REPO_ROOT / "service"
    shipped = {p for pattern in patterns for p in service.glob(pattern) if p.is_file()}
    missing = [str(p.relative_to(service)) for p in STATIC_DIR.rglob("*") if p.is_file() and p not in shipped]
    assert not missing, missing
