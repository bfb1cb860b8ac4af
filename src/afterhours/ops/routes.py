"""GET /metrics: Prometheus text format, for scrapers (AFTERHOURS_METRICS_TOKEN) and admins."""

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client.core import GaugeMetricFamily

from afterhours import metrics
from afterhours.auth import BEARER, bearer_token
from afterhours.db import DATABASE_OUTAGE
from afterhours.errors import AppError
from afterhours.ops import service

log = logging.getLogger("afterhours.ops")

router = APIRouter()


async def scraper(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    """The metrics token (a scraper has no user), or an admin's JWT (the ops page); a JWT
    without the admin role is 403 FORBIDDEN, anything else 401 UNAUTHORIZED."""
    token = bearer_token(credentials)
    expected = request.app.state.settings.metrics_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    if not request.app.state.verifier.verify(token).admin:
        raise AppError("FORBIDDEN", "Admin role or the metrics token required", status=403)


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(scraper)])
async def scrape(request: Request) -> Response:
    database = GaugeMetricFamily(
        "afterhours_database_up", "Whether this scrape could read the database (1) or not (0)"
    )
    try:
        async with request.app.state.db.sessionmaker() as db:
            read = await service.gauges(
                db,
                heartbeat_max_age=request.app.state.settings.worker_heartbeat_max_age_seconds,
            )
        database.add_metric([], 1)
    except DATABASE_OUTAGE as exc:
        # This process's own counters are still worth having; the gauges are gone for now.
        log.warning("metrics_database_unavailable error=%s", type(exc).__name__)
        read = []
        database.add_metric([], 0)
    return Response(metrics.exposition([database, *read]), media_type=metrics.CONTENT_TYPE)
