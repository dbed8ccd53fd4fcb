"""Security headers on every console response (page, JSON API, static files, uploads, errors).

The page runs only its own script and stylesheet (``script-src 'self'``: no inline code anywhere); user files get
a policy under which nothing in them can run (see ``bot/channels/console/media.py``)."""

from __future__ import annotations

from aiohttp import web

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# JSON, static files: nothing to render.
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
# A user's file: no script, no plugin, no form, opened in a unique origin (sandbox).
MEDIA_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
# PDF: the same without ``sandbox``, which Chromium's PDF viewer refuses to open in. The viewer runs the document in
# its own process and origin, so nothing in the file reaches ours.
PDF_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'"

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
PAGE_HEADERS = {
    **_COMMON,
    "Content-Security-Policy": PAGE_CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
API_HEADERS = {**_COMMON, "Content-Security-Policy": API_CSP, "Cache-Control": "private, no-store"}
MEDIA_HEADERS = {**_COMMON, "Content-Security-Policy": MEDIA_CSP, "Cache-Control": "private, no-store"}
STATIC_HEADERS = {**_COMMON, "Content-Security-Policy": API_CSP}


def headers_for(path: str) -> dict[str, str]:
    """The headers a console response at ``path`` carries (a handler may set a stricter one itself)."""
    if path in ("/console", "/console/"):
        return PAGE_HEADERS
    if path.startswith("/console/media/"):
        return MEDIA_HEADERS
    if path.startswith("/console/static/"):
        return STATIC_HEADERS
    return API_HEADERS


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: runs for every response, errors and static files included."""
    path = request.path
    if path != "/console" and not path.startswith("/console/"):
        return
    for name, value in headers_for(path).items():
        response.headers.setdefault(name, value)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
