"""Hostile bodies, content types and query strings on the console's endpoints: a 4xx with ``{"error": …}``, never a
500, and nothing stored. Each case below answered 500 with a traceback before (issue 9)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import build_app
from bot.runtime import Runtime
from storage.models import Attachment, ConsoleFeed, ConsoleMedia, ConsoleSession, InboundEvent

JSON_ENDPOINTS = ["/console/api/login", "/console/api/send", "/console/api/action", "/console/api/location"]
VALID = {
    "/console/api/login": {"user_id": "rep01"},
    "/console/api/send": {"client_id": "abcdefgh1234", "text": "帮助"},
    "/console/api/action": {"client_id": "abcdefgh1234", "payload": "x", "card_ref": ""},
    "/console/api/location": {"client_id": "abcdefgh1234", "latitude": 30.0, "longitude": 120.0},
}


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    """A client signed in as rep01 (its cookie is sent to every endpoint, login included)."""
    c: TestClient[Any, Any] = TestClient(TestServer(build_app(runtime, manage_runtime=False)))
    await c.start_server()
    resp = await c.post("/console/api/login", json={"user_id": "rep01"})
    assert resp.status == 200
    try:
        yield c
    finally:
        await c.close()


async def state(rt: Runtime) -> tuple[int, ...]:
    async with rt.db.read() as s:
        return tuple(
            [
                int(await s.scalar(select(func.count()).select_from(model)) or 0)
                for model in (InboundEvent, ConsoleFeed, ConsoleMedia, Attachment, ConsoleSession)
            ]
        )


async def post_raw(client: TestClient[Any, Any], path: str, body: bytes, content_type: str | None) -> Any:
    headers = {} if content_type is None else {"Content-Type": content_type}
    resp = await client.post(path, data=body, headers=headers)
    data = await resp.json(content_type=None)
    return resp.status, data


async def test_deeply_nested_body_is_400_not_recursion_error(client: TestClient[Any, Any], runtime: Runtime) -> None:
    before = await state(runtime)
    for path in JSON_ENDPOINTS:
        for opener in ("[", "{", '{"a":', '{"a":["'):
            status, data = await post_raw(client, path, (opener * 30_000).encode()[:60_000], "application/json")
            assert status == 400 and "error" in data, (path, opener)
        status, data = await post_raw(client, path, b"[" * 30_000, "application/json")
        assert "deeper" in data["error"]
    await runtime.settle()
    assert await state(runtime) == before


async def test_deeply_nested_login_body_without_sign_in_is_400(runtime: Runtime) -> None:
    async with TestClient(TestServer(build_app(runtime, manage_runtime=False))) as anonymous:
        resp = await anonymous.post(
            "/console/api/login", data=b"[" * 30_000, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400 and "error" in await resp.json()


async def test_unknown_charset_is_415_not_lookup_error(client: TestClient[Any, Any], runtime: Runtime) -> None:
    before = await state(runtime)
    for path in JSON_ENDPOINTS:
        for charset in ("bogus-enc", "utf-16", "rot13", "base64", "latin-1", '"'):
            status, data = await post_raw(client, path, b'{"user_id": "rep01"}', f"application/json; charset={charset}")
            assert status == 415 and "utf-8" in data["error"], (path, charset)
    assert await state(runtime) == before


async def test_json_endpoints_refuse_other_content_types_with_415(
    client: TestClient[Any, Any], runtime: Runtime
) -> None:
    import json

    before = await state(runtime)
    for path in JSON_ENDPOINTS:
        for content_type in (
            None,
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ):
            status, data = await post_raw(client, path, json.dumps(VALID[path]).encode(), content_type)
            assert status == 415 and "application/json" in data["error"], (path, content_type)
    await runtime.settle()
    assert await state(runtime) == before


async def test_utf8_charset_in_any_case_is_accepted(client: TestClient[Any, Any]) -> None:
    body = b'{"client_id": "abcdefgh1234", "text": "\xe5\xb8\xae\xe5\x8a\xa9"}'
    for ct in ("application/json; charset=UTF-8", "application/json;charset=utf8", "Application/JSON"):
        status, _ = await post_raw(client, "/console/api/send", body, ct)
        assert status == 200, ct


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{\x00}\x00",  # not UTF-8
        b'{"client_id": "abcdefgh1234", "text": "\\ud800"}',  # a lone surrogate: no column can store it
        b'{"client_id": "abcdefgh1234", "latitude": NaN, "longitude": Infinity}',
        b"1" * 5000,  # beyond int()'s digit limit
        b"",
    ],
    ids=["latin-bytes", "lone-surrogate", "nan", "huge-int", "empty"],
)
async def test_undecodable_or_unstorable_body_is_400(
    client: TestClient[Any, Any], runtime: Runtime, body: bytes
) -> None:
    before = await state(runtime)
    for path in JSON_ENDPOINTS:
        status, data = await post_raw(client, path, body, "application/json")
        assert status == 400 and "error" in data, path
    await runtime.settle()
    assert await state(runtime) == before


async def test_body_over_client_max_size_is_413_json(client: TestClient[Any, Any], runtime: Runtime) -> None:
    limit = runtime.settings.server.max_body_bytes
    status, data = await post_raw(client, "/console/api/send", b" " * (limit + 1), "application/json")
    assert status == 413 and "error" in data


async def test_updates_cursor_that_is_not_plain_digits_is_400(client: TestClient[Any, Any]) -> None:
    from yarl import URL

    for after in ("-1", "+1", "%201", "1_0", "%D9%A3", "1e3", "9" * 19, "9" * 5000, "%00", "%FF%FE", "0x10", ""):
        url = URL(str(client.make_url("/console/api/updates")) + f"?wait=0&after={after}", encoded=True)
        resp = await client.session.get(url)
        assert resp.status == 400 and "error" in await resp.json(), after


async def test_upload_name_with_nul_and_invalid_utf8_is_stored_clean(
    client: TestClient[Any, Any], runtime: Runtime
) -> None:
    from yarl import URL

    query = f"client_id={uuid.uuid4().hex}&name=%00%FF%FEa%0D%0Ab%E2%80%AE" + "x" * 3000
    url = URL(str(client.make_url("/console/api/media")) + "?" + query, encoded=True)
    resp = await client.session.post(url, data=b"\xff\xd8\xff photo", headers={"Content-Type": "image/jpeg"})
    assert resp.status == 200, await resp.text()
    async with runtime.db.read() as s:
        name = (await s.scalars(select(Attachment.filename))).one()
    # Cleaned, cut to 200 characters with the type's extension kept (uploads go to the attachment store).
    assert name.startswith("\ufffd\ufffdab") and len(name) == 200 and not any(ord(c) < 32 for c in name)
    assert name.endswith(".jpg")


async def test_upload_with_bad_client_id_stores_nothing(client: TestClient[Any, Any], runtime: Runtime) -> None:
    before = await state(runtime)
    for client_id in ("", "short", "x" * 65, "bad id!!", "%00" * 10):
        resp = await client.post(f"/console/api/media?client_id={client_id}&name=a", data=b"\xff\xd8\xff photo")
        assert resp.status == 400
    assert await state(runtime) == before


# NUL and raw bytes in the request line and headers (what a browser cannot send, a script can).
RAW_REQUESTS = [
    b"GET /console/api/me HTTP/1.1\r\nHost: x\r\nX-Evil: a\x00b\r\n\r\n",
    b"GET /console/api/updates?after=%00\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /console/media/\xff\xfe\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /console/api/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\x00\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /console/api/me HTTP/1.1\r\nHost: x\r\nCookie: salesbot_console=\x00\xff\r\n\r\n",
    b"GET /console HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
]


async def test_nul_and_raw_bytes_in_request_line_and_headers_are_4xx(client: TestClient[Any, Any]) -> None:
    assert client.port is not None
    for raw in RAW_REQUESTS:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        try:
            writer.write(raw)
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
        status = int(status_line.split()[1])
        assert 400 <= status < 500, (raw[:60], status_line)
