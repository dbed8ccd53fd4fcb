"""aiohttp application assembly: health, metrics, and the enabled channels' endpoints."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot import outbox
from bot.calendar.workcal import coverage_warning
from bot.channels import keys
from bot.channels.base import HealthReporting
from bot.runtime import Runtime
from storage.migrate import current_revision, head_revision

_FULL: web.AppKey[Runtime] = web.AppKey("runtime.full")

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    """JSON health: database reachable and migrated, outbox backlog, channel configuration problems."""
    rt = _runtime(request)
    body: dict[str, object] = {"status": "ok", "channels": sorted(rt.channels)}
    try:
        await rt.db.ping()
        revision = await current_revision(rt.db)
        async with rt.db.read() as s:
            body["outbox"] = await outbox.depth(s)
        body["database"] = {"ok": True, "revision": revision}
        if revision != head_revision():
            body["status"] = "error"
            body["database"] = {
                "ok": False,
                "revision": revision,
                "error": "schema not migrated: salesbot db upgrade",
            }
        for name, channel in rt.channels.items():
            problem = channel.health() if isinstance(channel, HealthReporting) else None
            if problem is not None:
                # A channel may also report figures while fine ({"ok": True, …}: API calls this month).
                if body["status"] == "ok" and problem.get("ok") is not True:
                    body["status"] = "degraded"
                body[name] = problem
    except Exception as exc:
        log.warning("health check: database unreachable: %s", exc.__class__.__name__)
        body["status"] = "error"
        body["database"] = {"ok": False, "error": exc.__class__.__name__}
    warning = coverage_warning(rt.settings.calendar, rt.clock.now().astimezone(rt.settings.org.tz).date())
    if warning:
        # A warning, not a failure: deadlines still work, on weekdays plus the configured dates.
        body["warnings"] = [f"calendar: {warning}"]
    # "degraded" (a channel misconfigured) still serves the other channels: only database errors are 503.
    return web.json_response(body, status=503 if body["status"] == "error" else 200)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    rt = _runtime(request)
    try:
        async with rt.db.read() as s:
            for status, n in (await outbox.depth(s)).items():
                rt.metrics.outbox_depth.labels(status).set(n)
    except Exception:
        rt.metrics.errors.labels("metrics").inc()
    resp = web.Response(body=rt.metrics.render())
    resp.content_type = "text/plain"
    resp.charset = "utf-8"
    return resp


async def root(request: web.Request) -> web.StreamResponse:
    home = next((p.home for p in _runtime(request).plugins if p.home), None)
    if home:
        raise web.HTTPFound(home)
    return web.json_response({"service": "salesbot"})


async def freeze_startup_heap(_app: web.Application) -> None:
    """An ``on_startup`` hook for the served process: what exists once it has started (modules, the pinyin
    dictionaries, about 300,000 objects) lives as long as the process. ``gc.freeze`` moves it out of the collector's
    sight; otherwise every full collection walks it and stops the event loop for 50-200 ms."""
    gc.collect()
    gc.freeze()


def _runtime(request: web.Request) -> Runtime:
    """The runtime the app was built with (channels see it through ``keys.RUNTIME`` as a ``Host``)."""
    return request.app[_FULL]


def build_app(runtime: Runtime, *, manage_runtime: bool = True) -> web.Application:
    """The web app around ``runtime``; with ``manage_runtime`` it starts and stops the runtime's workers."""
    app = web.Application(client_max_size=runtime.settings.server.max_body_bytes)
    app[keys.RUNTIME] = runtime
    app[_FULL] = runtime
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    for plugin in runtime.plugins:
        plugin.setup(app)

    if manage_runtime:

        async def lifetime(_app: web.Application) -> AsyncIterator[None]:
            await runtime.start()
            yield
            await runtime.close()

        app.cleanup_ctx.append(lifetime)
    return app
