"""Operations: liveness, readiness (database and broker reachable), Prometheus metrics."""

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from dronelog.api.accounts import Role
from dronelog.api.deps import require
from dronelog.api.problems import Problem
from dronelog.broker import port_open
from dronelog.ingest.mqtt_source import BrokerAddress

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up (no token needed)")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Database and broker reachable (no token needed)")
def readyz(request: Request) -> dict:
    checks = {}
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # any failure means not ready, and says why
        checks["database"] = f"unreachable: {type(error).__name__}"
    broker = BrokerAddress.parse(request.app.state.settings.mqtt_url)
    checks["broker"] = "ok" if port_open(broker.host, broker.port) else "unreachable"
    if any(value != "ok" for value in checks.values()):
        raise Problem(503, "Not ready", "a dependency is unreachable", checks=checks)
    return {"status": "ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics",
            dependencies=[Depends(require(Role.DISPATCHER, Role.ADMIN))])
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
