"""GET /admin/ops: the operations page and its assets, served by the service itself (nothing
from elsewhere), and nothing else of the package under /admin/assets."""

import re

import httpx

from tests.support.clients import assert_error


async def test_the_ops_page_and_the_assets_it_loads_are_served_and_nothing_else_is(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/admin/ops")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(assets) == ["assets/ops.css", "assets/ops.js"]
    kinds = {".js": "text/javascript", ".css": "text/css"}
    for asset in assets:
        r = await client.get(f"/admin/{asset}")  # relative to /admin/ops
        assert r.status_code == 200, asset
        assert r.headers["content-type"].startswith(kinds[asset[asset.rindex(".") :]])
        assert not re.search(r"""(?:url\(|import |fetch\(|src=)["']?(?:https?:)?//""", r.text)
    script = (await client.get("/admin/assets/ops.js")).text
    assert 'METRICS_URL = "../metrics"' in script  # /admin/ops → /metrics, behind any prefix
    assert "sessionStorage" in script and "localStorage" not in script
    # Every control has an accessible name.
    assert '<label for="token">' in page and 'id="token"' in page
    assert all(
        re.search(r">[^<]+</button>", b) for b in re.findall(r"<button[^>]*>[^<]*</button>", page)
    )

    # The mount serves the page's assets, never the package's Python.
    for path in ("routes.py", "__init__.py", "missing.js", "", "../settings.py"):
        assert_error(await client.get(f"/admin/assets/{path}"), 404, "NOT_FOUND")
