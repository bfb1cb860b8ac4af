"""The service's own web pages: the moderation console at /admin, on the admin API. Plain files
shipped in the package (static/): no build step, nothing fetched from elsewhere, so they work
offline. The pages hold no data; every read and action is an admin API call with the token the
moderator signs in with."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
# The pages are the same for everyone and carry no data: a client may keep them briefly, and
# nothing may frame them (a framed console could be clicked through by another site).
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/admin")
async def moderation_console() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=HEADERS)


def mount_assets(app: FastAPI) -> None:
    app.mount("/admin/assets", StaticFiles(directory=STATIC), name="admin-assets")
