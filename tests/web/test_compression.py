"""Compressed answers and locally served assets, without a browser (every database)."""

import base64
import gzip
import hashlib
import re

import httpx
import pytest

from app.api.assets import DOCS_ASSETS_DIR, PLOTLY_JS
from app.web import STATIC_DIR
from tests import factories
from tests.helpers import auth, login

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def raw(client, method: str, path: str, headers: dict, **kwargs) -> httpx.Response:
    """The response with its body as sent (not decoded), so sizes and encodings show."""
    request = client.build_request(method, path, headers=headers, **kwargs)
    response = client.send(request, stream=True)
    response.sent = b"".join(response.iter_raw())
    response.close()
    return response


@pytest.fixture
def admin(client, db, mailbox):
    plan = factories.create_plan(db, name="Europe 5 GB", price_minor_units=1999, currency="EUR")
    factories.create_profiles(db, plan=plan, count=1)
    return auth(login(client, mailbox, "admin@shop.test")["access_token"])


def test_json_answers_are_gzipped_for_clients_that_take_it(client, admin):
    plain = raw(client, "GET", "/openapi.json", IDENTITY)
    packed = raw(client, "GET", "/openapi.json", GZIP)
    assert plain.headers.get("content-encoding") is None and "Accept-Encoding" in packed.headers["vary"]
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.sent) == plain.sent
    assert int(packed.headers["content-length"]) == len(packed.sent) < len(plain.sent) / 4


def test_csv_downloads_still_work_compressed(client, admin):
    params = {"start_date": "2026-11-01", "end_date": "2026-11-30", "format": "csv"}
    plain = raw(client, "GET", "/admin/analytics/timeseries", {**IDENTITY, **admin}, params=params)
    packed = raw(client, "GET", "/admin/analytics/timeseries", {**GZIP, **admin}, params=params)
    assert plain.status_code == packed.status_code == 200
    assert packed.headers["content-type"] == plain.headers["content-type"] == "text/csv; charset=utf-8"
    assert packed.headers["content-disposition"] == plain.headers["content-disposition"] == (
        'attachment; filename="funnel-2026-11-01-to-2026-11-30.csv"'
    )
    assert packed.headers["content-encoding"] == "gzip"
    text = gzip.decompress(packed.sent).decode()
    assert text == plain.sent.decode()
    lines = text.splitlines()
    assert lines[0] == "date,user_signup,checkout_started,payment_succeeded,esim_activated,payments_failed"
    assert lines[1:] == [f"2026-11-{d:02d},0,0,0,0,0" for d in range(1, 31)]


def test_the_body_limit_still_answers_413_through_gzip(client):
    response = raw(client, "POST", "/auth/request-code", {**GZIP, "Content-Type": "application/json"}, content=b"x" * 300_000)
    assert (response.status_code, response.sent) == (413, b'{"detail":"Request body too large"}')


def test_static_files_are_gzipped_and_whole(client):
    packed = raw(client, "GET", "/static/style.css", GZIP)
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.sent) == (STATIC_DIR / "style.css").read_bytes()
    script = raw(client, "GET", "/static/docs/swagger-ui-bundle.js", GZIP)
    assert gzip.decompress(script.sent) == (DOCS_ASSETS_DIR / "swagger-ui-bundle.js").read_bytes()


def test_plotly_is_sent_precompressed_or_as_is(client):
    original = PLOTLY_JS.read_bytes()
    packed = raw(client, "GET", "/static/vendor/plotly.min.js", GZIP)
    assert (packed.headers["content-encoding"], packed.headers["cache-control"]) == ("gzip", "public, max-age=31536000, immutable")
    assert gzip.decompress(packed.sent) == original
    assert int(packed.headers["content-length"]) == len(packed.sent) < 1_500_000
    plain = raw(client, "GET", "/static/vendor/plotly.min.js", IDENTITY)
    assert plain.headers.get("content-encoding") is None and plain.sent == original
    head = client.head("/static/vendor/plotly.min.js", headers=GZIP)
    assert (head.status_code, head.headers["content-length"], head.content) == (200, str(len(packed.sent)), b"")


@pytest.mark.parametrize(("path", "asset"), [("/docs", "/static/docs/swagger-ui-bundle.js"), ("/redoc", "/static/docs/redoc.standalone.js")])
def test_docs_pages_load_their_files_from_this_site(client, path, asset):
    page = client.get(path)
    assert page.status_code == 200
    assert f'src="{asset}"' in page.text and "cdn." not in page.text and "fonts.googleapis" not in page.text
    policy = page.headers["content-security-policy"]
    for script in re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert client.get(asset).status_code == 200


def test_favicon_is_the_sites_own(client):
    response = client.get("/favicon.ico")
    assert (response.status_code, response.headers["content-type"]) == (200, "image/svg+xml")
    assert response.content == (STATIC_DIR / "favicon.svg").read_bytes()
