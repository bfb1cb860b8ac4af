"""The console's page and its assets come from the service itself: nothing from elsewhere."""

import re

import httpx


async def test_the_console_and_everything_it_loads_are_served_here(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/admin")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    links = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert links and all(link.startswith("/admin/assets/") for link in links), links
    for link in links:
        asset = await client.get(link)
        assert asset.status_code == 200 and asset.content, link
    assert (await client.get("/admin/assets/nothing.js")).status_code == 404
