"""Junk at every documented route, over real HTTP: never a 500, always the error envelope.

The routes come from the running app's /openapi.json, so new routes are fuzzed without edits here.
Hypothesis runs in a worker thread with a blocking client while the app keeps serving on the
test loop.
"""

import asyncio
import io
import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from PIL import Image

ADULT = {"name": "Fuzz", "birthDate": "1990-01-01", "gender": "nonbinary"}
# Routes this test currently breaks, with why; the test fails as soon as one of them is fixed
# (so the entry goes) or any other route breaks.
EXAMPLES_PER_ROUTE = 30
CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")

# Text that has broken services before: NUL, lone surrogates, RTL marks, emoji, SQL and paths.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None), max_size=20),  # lone surrogates included
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "\ud800", "💥" * 3, "\u202e", "' OR 1=1 --", "../../etc"]
    ),
    st.integers(0, 70_000).map(lambda n: "x" * n),  # up to past the 64 KiB body limit
)
# Integers at the edges of the database's column types, where a Python int stops fitting.
EDGE_INTS = [2**15, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
edge_ints = st.sampled_from(EDGE_INTS)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    edge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)
junk_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def valid(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> Any:
    """Values the schema allows, edges included: what gets past validation into the rules and
    the database (huge integers where no bound is declared, NUL or surrogates in free text)."""
    schema = resolve(schema, spec)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return st.one_of([valid(option, spec, depth + 1) for option in options])
    if "enum" in schema or "const" in schema:
        return st.sampled_from(schema.get("enum") or [schema["const"]])
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        edges = [n for n in EDGE_INTS if (low is None or n >= low) and (high is None or n <= high)]
        return st.integers(low, high) | st.sampled_from(edges or [low if low is not None else 0])
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        formats = {
            "date": st.dates().map(str),
            "date-time": st.datetimes().map(lambda d: d.isoformat() + "Z"),
            "uuid": st.uuids().map(str),
        }
        if schema.get("format") in formats:
            return formats[schema["format"]]
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 60), 60)
        return st.text(st.characters(codec=None), min_size=low, max_size=high) | st.text(
            min_size=low, max_size=high
        )
    if kind == "array":
        items = valid(schema.get("items", {}), spec, depth + 1)
        return st.lists(
            items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 5)
        )
    if kind == "object" and depth < 4:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: valid(v, spec, depth + 1) for k, v in properties.items() if k in required},
            optional={
                k: valid(v, spec, depth + 1) for k, v in properties.items() if k not in required
            },
        )
    return junk_json


def mutated(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A valid body with one thing wrong: a field dropped, of the wrong type, or unknown."""

    def mutate(args: tuple[dict[str, Any], str, int, str, Any]) -> dict[str, Any]:
        body, how, index, name, junk = args
        body = dict(body)
        keys = sorted(body)
        if how == "extra" or not keys:
            body[name or "unknown"] = junk
        elif how == "drop":
            del body[keys[index % len(keys)]]
        else:
            body[keys[index % len(keys)]] = junk
        return body

    return st.tuples(
        valid(schema, spec),
        st.sampled_from(["drop", "wrong", "extra"]),
        st.integers(0, 20),
        st.text(max_size=8),
        junk_json,
    ).map(mutate)


def image(fmt: str, width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "green").save(buf, fmt)
    return buf.getvalue()


IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
images = st.builds(
    image, st.sampled_from(sorted(IMAGE_TYPES)), st.integers(1, 64), st.integers(1, 64)
)
declared_images = st.builds(
    lambda fmt, w, h: (image(fmt, w, h), IMAGE_TYPES[fmt]),
    st.sampled_from(sorted(IMAGE_TYPES)),
    st.integers(1, 64),
    st.integers(1, 64),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "image/jpeg",
        "image/png",
        "image/webp",
        "",
    ]
)


def encoded(values: Any) -> Any:
    return values.map(lambda v: json.dumps(v, ensure_ascii=True).encode())


def bodies(op: dict[str, Any], spec: dict[str, Any]) -> Any:
    """(raw bytes or None, Content-Type or None) pairs for one operation."""
    options = [
        st.tuples(encoded(junk_json), st.just("application/json") | content_types),
        st.tuples(st.binary(max_size=2048), content_types),
        st.tuples(images, content_types),
        st.just((None, None)),
    ]
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        json_type = st.just("application/json")
        options[:0] = [
            st.tuples(encoded(valid(schema, spec)), json_type),
            st.tuples(encoded(mutated(schema, spec)), json_type),
        ]
    if any(t.startswith("image/") for t in content):
        options.insert(0, declared_images)
    return st.one_of(options)


# Query and path values: the same junk, but short enough to stay a URL clients will send.
param_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    edge_ints,
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "../../etc", "%00", "x" * 4000]),
)


def encodable(value: Any) -> bool:
    """A lone surrogate cannot be put in a URL at all (the client would fail, not the server)."""
    try:
        as_text(value).encode()
    except UnicodeEncodeError:
        return False
    return True


def parameters(
    op: dict[str, Any], where: str, spec: dict[str, Any], known: dict[str, str] | None = None
) -> Any:
    """Values for the operation's `where` parameters; a path parameter is also, often, the id
    of something that exists (`known`), so the route goes past its lookup."""
    known = known or {}
    params = {
        p["name"]: (
            (st.just(known[p["name"]]) if p["name"] in known else st.nothing())
            | valid(p.get("schema", {}), spec)
            | param_scalars
        ).filter(encodable)
        for p in op.get("parameters", [])
        if p["in"] == where
    }
    return (
        st.fixed_dictionaries({}, optional=params)
        if where == "query"
        else st.fixed_dictionaries(params)
    )


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_envelope(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what} -> {r.status_code} {r.text[:500]}"
    assert "Traceback" not in r.text, what
    if r.status_code in (204, 304):
        return
    body = r.json()
    if r.status_code >= 400:
        assert body["success"] is False, what
        assert isinstance(body["error"], str) and body["error"], what
        assert isinstance(body["code"], str) and CODE.match(body["code"]), what
        if body["code"] == "VALIDATION_ERROR":
            details = body["details"]
            assert details and all(
                isinstance(d["field"], str) and isinstance(d["message"], str) for d in details
            ), what
    elif isinstance(body, dict) and "success" in body:
        assert body["success"] is True, what


def minimal(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The simplest value the schema accepts: the base that boundary cases vary one field of."""
    schema = resolve(schema, spec)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return minimal(options[0], spec)
    if "enum" in schema or "const" in schema:
        return (schema.get("enum") or [schema["const"]])[0]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "string":
        fixed = {
            "date": "1990-01-01",
            "date-time": "2030-01-01T00:00:00Z",
            "uuid": str(uuid.UUID(int=1)),
        }
        return fixed.get(schema.get("format", ""), "a" * schema.get("minLength", 1))
    if kind == "array":
        return [minimal(schema.get("items", {}), spec)] * max(schema.get("minItems", 0), 1)
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            k: minimal(properties[k], spec) for k in schema.get("required", []) if k in properties
        }
    return None


BOUNDARY_VALUES: list[Any] = [
    *EDGE_INTS,
    -1,
    0,
    1e308,
    "\x00",
    "a\x00b",
    "\ud800",
    "x" * 10_000,
    "",
    None,
    True,
    [],
    {},
    [["deep"]],
]


def boundary_cases(
    op: dict[str, Any], spec: dict[str, Any]
) -> list[tuple[tuple[bytes | None, str | None], dict[str, Any]]]:
    """Each body field and each query parameter set, alone, to each boundary value."""
    cases: list[tuple[tuple[bytes | None, str | None], dict[str, Any]]] = []
    content = op.get("requestBody", {}).get("content", {})
    body = None
    if "application/json" in content:
        schema = resolve(content["application/json"]["schema"], spec)
        body = minimal(schema, spec)
        for field in schema.get("properties", {}):
            for value in BOUNDARY_VALUES:
                changed = json.dumps({**body, field: value}, ensure_ascii=True).encode()
                cases.append(((changed, "application/json"), {}))
    raw = (json.dumps(body).encode(), "application/json") if body is not None else (None, None)
    for param in op.get("parameters", []):
        if param["in"] == "query":
            cases += [(raw, {param["name"]: value}) for value in BOUNDARY_VALUES[:10]]
    return cases


def fuzz_operation(
    http: httpx.Client,
    spec: dict[str, Any],
    method: str,
    path: str,
    headers: dict[str, str],
    known: dict[str, str],
) -> None:
    op = spec["paths"][path][method.lower()]

    def send(
        body: tuple[bytes | None, str | None], query: dict[str, Any], path_params: Any
    ) -> None:
        url = path
        for name, value in path_params.items():
            url = url.replace("{" + name + "}", quote(as_text(value), safe="") or "x")
        content, content_type = body
        request_headers = dict(headers)
        if content_type is not None:
            request_headers["Content-Type"] = content_type
        params = {k: as_text(v) for k, v in query.items()}
        what = f"{method} {url} params={params!r:.200} type={content_type!r} body={content!r:.300}"
        r = http.request(method, url, params=params, content=content, headers=request_headers)
        check_envelope(r, what)

    # First the deterministic edges, every run; then Hypothesis's random junk.
    some_path = {
        p["name"]: str(uuid.uuid4()) for p in op.get("parameters", []) if p["in"] == "path"
    }
    for body, query in boundary_cases(op, spec):
        send(body, query, some_path)
        if known:
            send(body, query, {name: known.get(name, value) for name, value in some_path.items()})

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        body=bodies(op, spec),
        query=parameters(op, "query", spec),
        path_params=parameters(op, "path", spec, known),
    )
    def run(body: tuple[bytes | None, str | None], query: dict[str, Any], path_params: Any) -> None:
        note(f"{method} {path} query={query!r:.200} path={path_params!r:.200} body={body!r:.300}")
        send(body, query, path_params)

    run()


async def test_no_documented_route_answers_junk_with_a_500(
    client: httpx.AsyncClient, base_url: str, make_user: Callable[..., Any]
) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    assert any(path.startswith("/api/") for _, path in operations)

    async def profiled(*, admin: bool = False) -> Any:
        # With a base profile so bodies reach the deeper rules (photo decoding, After Hours
        # profile); no After Hours profile, so no session can start and disturb other tests'
        # matching.
        user = make_user(premium=True, admin=admin)
        r = await client.put("/api/profile", json=ADULT, headers=user.headers)
        assert r.status_code == 200, r.text
        return user

    users, known = {}, {}
    for operation in operations:
        # A fresh user per route; an admin on the admin routes, which then meet a report and a
        # user that exist as well as ids that do not.
        admin = operation[1].startswith("/api/admin/")
        user = await profiled(admin=admin)
        users[operation] = {**user.headers, "X-Device-Fingerprint": f"fuzz-{uuid.uuid4()}"}
        known[operation] = {}
        if admin and "_id}" in operation[1]:
            reporter, reported = await profiled(), await profiled()
            r = await client.post(
                "/api/after-hours/reports",
                json={"reportedUserId": str(reported.id), "category": "spam"},
                headers=reporter.headers,
            )
            assert r.status_code == 201, r.text
            known[operation] = {"report_id": r.json()["report"]["id"], "user_id": str(reported.id)}

    def fuzz_all() -> list[str]:
        failures = []
        # A connection per request: a refused oversized body (413) ends its connection, and a
        # pooled one reused right after would fail on the client side, not the server's.
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base_url, timeout=30, limits=no_reuse) as http:
            for method, path in operations:
                try:
                    operation = (method, path)
                    fuzz_operation(http, spec, method, path, users[operation], known[operation])
                except Exception as exc:
                    failures.append(f"{method} {path}: {exc}")
        return failures

    failures = await asyncio.to_thread(fuzz_all)
    assert not failures, "\n\n".join(failures)
