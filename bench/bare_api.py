"""The HTTP benchmark's baseline: a bare FastAPI app on the same uvicorn (httptools, uvloop)
whose two routes, at the paths of ours, each do one indexed query (the user's row by primary
key) on the same database through a psycopg pool, and answer a small JSON body. No auth, no
validation beyond FastAPI's, no transaction of ours. Usage: python -m bench.bare_api PORT URL
"""

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from psycopg_pool import AsyncConnectionPool


def create(url: str) -> FastAPI:
    pool = AsyncConnectionPool(url, min_size=4, max_size=10, open=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    async def one_row(request: Request) -> dict[str, Any]:
        user = uuid.UUID(request.headers.get("x-user-id", str(uuid.uuid4())))
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT id, event_seq FROM users WHERE id = %s", [user])
            row = await cur.fetchone()
        return {"found": row is not None, "seq": row[1] if row else None}

    @app.post("/api/after-hours/session/start", status_code=201)
    async def start(request: Request) -> dict[str, Any]:
        return await one_row(request)

    @app.get("/api/after-hours/match")
    async def match(request: Request) -> dict[str, Any]:
        return await one_row(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create(url), host="127.0.0.1", port=port, log_level="warning", http="httptools")
