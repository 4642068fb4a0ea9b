"""`/docs` works offline: Swagger UI from the vendored swagger-ui-dist, nothing from a CDN."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.service.test_page import open_page

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def test_docs_load_only_files_the_server_serves(tmp_path):
    client = TestClient(create_app(Settings(home=tmp_path, poll_seconds=0)))
    page = client.get("/docs")
    assert page.status_code == 200
    assets = ASSET.findall(page.text)
    assert assets and all(a.startswith("/static/swagger/") for a in assets), assets
    assert "cdn" not in page.text and "https://" not in page.text.replace("https://github", "")
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 500, asset
    licence = client.get("/static/swagger/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text
    assert client.get("/redoc").status_code == 404


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
def test_docs_render_the_operations_in_a_browser(server, tmp_path):
    # Offline: no name resolves but the server's own address.
    offline = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",)
    with open_page(tmp_path, f"{server.url}/docs", flags=offline) as page:
        deadline, body = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "/v1/counterfactual" not in body:
            time.sleep(0.3)
            body = page.evaluate("document.body.innerText") or ""
    assert "/v1/forecast" in body and "/v1/counterfactual" in body, body[:2000]
