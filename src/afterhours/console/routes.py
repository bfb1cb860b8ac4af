"""The console's pages and their assets, under /admin.

One mount serves every asset in this folder at /admin/assets/<file>; each page is a route of
its own here. The pages carry no data: they ask for an admin token and call the API (or
/metrics) with it, so serving them needs no auth.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

FOLDER = Path(__file__).resolve().parent
ASSETS_PATH = "/admin/assets"
# This folder holds Python too: only these are assets.
ASSET_SUFFIXES = frozenset({".html", ".js", ".css", ".svg", ".png", ".ico", ".woff2"})
# Everything a page loads comes from this service: no CDN, no inline script, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors' older spelling, for older browsers
    "Cache-Control": "no-cache",
}


class Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        if Path(path).suffix not in ASSET_SUFFIXES:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def page(name: str) -> FileResponse:
    return FileResponse(FOLDER / name, media_type="text/html", headers=PAGE_HEADERS)


router = APIRouter(include_in_schema=False)
router.mount(ASSETS_PATH, Assets(directory=FOLDER), name="console-assets")


@router.get("/admin")
async def moderation_console() -> FileResponse:
    """The moderation console (index.html, console.js, console.css; Socket.IO's browser client
    vendored as socket.io.min.js 4.8, MIT), on the admin API and the admins room."""
    return page("index.html")


@router.get("/admin/ops")
async def ops_page() -> FileResponse:
    """Live charts of /metrics (ops.html, ops.js, ops.css)."""
    return page("ops.html")
