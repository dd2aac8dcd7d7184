"""The FastAPI application: `create_app` wires settings, database, clock and routers."""

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from dronelog import __version__
from dronelog.api import access_log, problems
from dronelog.api.body_limit import BodyLimit
from dronelog.api.change_feed import ChangeFeed
from dronelog.api.metrics import build_registry
from dronelog.api.routes import (
    admin,
    admin_notifications,
    alerts,
    audit,
    auth,
    containers,
    custody,
    dashboards,
    docs,
    exports,
    fleet,
    health,
    live,
    registry,
    requests,
    specimen_definitions,
    specimens,
)
from dronelog.clock import Clock, SystemClock
from dronelog.config import Settings
from dronelog.contract.topics import TopicLayout
from dronelog.domain.dispatch import DispatchRules
from dronelog.domain.stability import SpecimenLimits
from dronelog.ingest.triage import TriageRules


def create_app(settings: Settings, engine: Engine, clock: Clock | None = None) -> FastAPI:
    app = FastAPI(
        title="dronelog API", version=__version__,
        docs_url=None, redoc_url=None,  # served from packaged assets instead (routes/docs.py)
        description="Chain of custody and flight telemetry for drone transport of lab "
                    "specimens and blood. Every endpoint but /healthz and /readyz needs a "
                    "bearer token (POST /api/v1/auth/token, or `dronelog users token`).")
    app.router.on_startup.append(
        lambda: access_log.install(dashboard_files=settings.log_dashboard_files))
    app.state.settings = settings
    app.state.engine = engine
    app.state.clock = clock or SystemClock()
    # the turnaround policies and the stability catalogue, as the scheduler reads them
    app.state.limits = SpecimenLimits.from_files(settings.policy_file, settings.stability_file)
    app.state.dispatch = DispatchRules.from_file(settings.dispatch_file)
    app.state.rules = TriageRules(
        layout=TopicLayout(settings.topic_prefix),
        max_payload_bytes=settings.max_payload_bytes,
        max_future_skew=timedelta(seconds=settings.max_future_skew_s),
        max_age=timedelta(seconds=settings.max_event_age_s))
    app.state.feed = ChangeFeed(engine, settings)  # the live streams' one reader
    app.router.on_shutdown.append(app.state.feed.stop)
    app.state.metrics, app.state.custody_posts = build_registry(engine, app.state.clock)
    problems.install(app)
    app.add_middleware(BodyLimit)  # outermost: before anything reads a body
    app.include_router(requests.reports)  # the requests' service level, beside the report
    # dashboards last: the web dashboards at /
    for module in (health, auth, specimens, exports, specimen_definitions, custody,
                   containers, requests, alerts, fleet, registry, live, admin,
                   admin_notifications, audit, docs, dashboards):
        app.include_router(module.router)
    return app
