"""Reading the console's JSON request bodies so that no body, however hostile, ends in a 500.

Every JSON endpoint goes through :func:`read_model`: ``application/json`` only (415), UTF-8 only (415 for any other
declared charset — a made-up one used to raise LookupError), at most ``client_max_size`` bytes (413), nesting
checked *before* parsing (30,000 ``[`` used to raise RecursionError), strings that cannot be stored (lone
surrogates) refused, then the pydantic model. Every refusal is ``{"error": …}`` JSON, as the page expects.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

# Deeper than any body the page sends (it sends flat objects), far below the parser's recursion limit.
MAX_DEPTH = 20
# ASCII is a subset of UTF-8; nothing else is decoded (no guessing, no unusual codecs).
CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
# A string (an unterminated one runs to the end: nothing is scanned twice, so this stays linear) or a bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def error_response(message: str, status: int = 400) -> web.Response:
    """A ``{"error": message}`` JSON answer (Chinese kept readable)."""
    return web.Response(
        text=json.dumps({"error": message}, ensure_ascii=False), status=status, content_type="application/json"
    )


def error(exc: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error carrying ``{"error": message}``."""
    return exc(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects in ``text`` nest deeper than ``limit`` (brackets inside strings do not count).
    Linear and without recursion, so it is safe to run on anything before ``json.loads`` sees it."""
    depth = 0
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token[0] == '"':
            continue
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _storable(value: Any) -> bool:
    """No lone surrogates anywhere (``"\\ud800"`` parses, but no database column can store it)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def parse(raw: bytes) -> Any:
    """The JSON value of a UTF-8 body; ValueError with a short reason for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("body must be UTF-8") from None
    if too_deep(text):
        raise ValueError(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ValueError("body must be JSON") from None
    if not _storable(data):
        raise ValueError("body must be UTF-8")
    return data


async def read_model(request: web.Request, model: type[M]) -> M:
    """The request's JSON body validated as ``model``; raises a 4xx ``{"error": …}`` for anything else."""
    if request.content_type != "application/json":
        raise error(web.HTTPUnsupportedMediaType, "Content-Type must be application/json")
    charset = request.charset
    if charset is not None and charset.lower() not in CHARSETS:
        raise error(web.HTTPUnsupportedMediaType, "charset must be utf-8")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise web.HTTPRequestEntityTooLarge(
            request.client_max_size,
            text=json.dumps({"error": f"body larger than {request.client_max_size} bytes"}),
            content_type="application/json",
        ) from None
    try:
        data = parse(raw)
    except ValueError as exc:
        raise error(web.HTTPBadRequest, str(exc)) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
        raise error(web.HTTPBadRequest, f"invalid fields: {fields}") from None
