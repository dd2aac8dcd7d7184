"""Transport requests: a site asks for its sealed boxes to be carried, a dispatcher assigns a
drone (the flight plan goes through the shared ingest path: dispatch/flight_plans.py), a
ground courier takes over, the boxes are picked up and delivered (domain/requests.py).

Site staff (the lab role) request flights from their own site and see the requests from and
to it; they may cancel their site's request before it is picked up, and record a courier's
pickup at their site or its delivery to them. Dispatchers and administrators see and do
everything. Every change is a `request_change` row attributed to the signed-in user (what the
notifications route) and an audit entry.
"""

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Connection, and_, func, or_, select

from dronelog.api import audit
from dronelog.api.accounts import Role, User
from dronelog.api.deps import MAX_OFFSET, ConnectionDep, day_query, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import PeriodRequests
from dronelog.dispatch import records, service_level
from dronelog.dispatch.flight_plans import Plan, PlanRefused, send_abort, send_plan
from dronelog.domain.custody_rules import Sender
from dronelog.domain.dispatch import DroneState, Suggestion, candidates, route_length_m
from dronelog.domain.eta import estimate_eta
from dronelog.domain.requests import (
    FINAL,
    PRIORITIES,
    Action,
    Refused,
    RequestState,
    Step,
    transition,
    waiting,
)
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Drone, FlightTracking, Site
from dronelog.turnaround import repository as repo

router = APIRouter(prefix="/api/v1/requests", tags=["transport requests"])
reports = APIRouter(prefix="/api/v1/reports", tags=["registry and reports"])
Anyone = Annotated[User, Depends(require(Role.LAB, Role.DISPATCHER, Role.ADMIN))]
Dispatcher = Annotated[User, Depends(require(Role.DISPATCHER, Role.ADMIN))]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RequestPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
REQUEST, F, D, SITE = (records.REQUEST, FlightTracking.__table__, Drone.__table__,
                       Site.__table__)
READY_HORIZON = timedelta(days=7)  # a request further ahead is a mistake, not a request
RECENT_TRACK = timedelta(minutes=5)


class RequestCreate(BaseModel):
    destination_site_id: Id
    origin_site_id: Id | None = Field(None, description="dispatchers only; site staff request "
                                      "from their own site")
    priority: Literal["stat", "urgent", "routine"] = "routine"
    ready_at: AwareDatetime | None = Field(None, description="when the boxes are ready; "
                                           "default now; at most 7 days ahead")
    containers: list[Id] = Field(default_factory=list, max_length=20,
                                 description="the sealed boxes to carry")


class RequestAction(BaseModel):
    action: Literal["assign", "reassign", "to_courier", "pick_up", "deliver", "cancel",
                    "approve"]
    drone_id: Id | None = Field(None, description="assign, reassign: default the suggested "
                                "drone")
    courier_id: Id | None = Field(None, description="to_courier: the courier (staff id or "
                                  "vehicle)")
    approval_ref: Id | None = Field(None, description="the flight's airspace approval "
                                    "reference; a held flight is sent when it is entered")


class ChangePublic(BaseModel):
    action: str
    from_state: str | None
    to_state: str
    at: datetime
    by: str
    detail: dict


class RequestPublic(BaseModel):
    id: str
    origin_site_id: str
    destination_site_id: str
    priority: str
    state: RequestState
    source: str
    containers: list[str]
    requested_at: datetime
    requested_by: str
    ready_at: datetime
    waiting_s: float = Field(description="since the ready time, until picked up")
    carrier: str | None
    drone_id: str | None
    drone_registration: str | None = Field(description="the aircraft's real-name "
                                           "registration number (实名登记号)")
    flight_id: str | None
    flight_state: str | None
    planned_departure: datetime | None
    eta: datetime | None = Field(description="the flight's arrival: from its track when "
                                 "airborne, else departure plus route at cruise speed")
    approval_ref: str | None
    flight_held: bool = Field(description="waiting for its airspace approval reference")
    courier_id: str | None
    picked_up_at: datetime | None
    delivered_at: datetime | None
    history: list[ChangePublic] | None = None


class RequestPage(BaseModel):
    items: list[RequestPublic]
    total: int
    limit: int
    offset: int


class SuggestionPublic(BaseModel):
    drone_id: str
    registration_number: str | None
    to_origin_m: float
    needed_pct: float
    battery_pct: float


# --- reading ----------------------------------------------------------------------------------


@router.get("", response_model=RequestPage, summary="Transport requests: the open ones, most "
            "urgent and longest waiting first (state=all for every one, newest first)")
def list_requests(request: Request, conn: ConnectionDep, user: Anyone,
                  state: Annotated[str, Query(pattern=r"^(open|all|requested|assigned|courier|"
                                              r"picked_up|delivered|cancelled)$")] = "open",
                  limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> RequestPage:
    query = select(REQUEST)
    if user.role is Role.LAB:
        query = query.where(or_(REQUEST.c.origin_site_id == user.site_id,
                                REQUEST.c.destination_site_id == user.site_id))
    if state == "open":
        query = query.where(REQUEST.c.state.in_([s.value for s in RequestState
                                                 if s not in FINAL]))
    elif state != "all":
        query = query.where(REQUEST.c.state == state)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if state in ("open", "requested", "assigned", "courier"):
        rank = {p: i for i, p in enumerate(PRIORITIES)}
        order = [_case(REQUEST.c.priority, rank), REQUEST.c.ready_at, REQUEST.c.id]
    else:
        order = [REQUEST.c.requested_at.desc(), REQUEST.c.id]
    rows = conn.execute(query.order_by(*order).limit(limit).offset(offset)).all()
    view = _View(conn, request)
    return RequestPage(items=[view.public(row) for row in rows], total=total, limit=limit,
                       offset=offset)


def _case(column, ranks: dict[str, int]):
    from sqlalchemy import case
    return case(ranks, value=column, else_=len(ranks))


class FormCode(BaseModel):
    url: str
    qr: list[str] = Field(description="the QR code of the url: rows of modules, '1' dark, "
                          "without the quiet zone")


@router.get("/form-qr", response_model=FormCode,
            summary="The QR code a clinic prints: it opens the request form of the dashboards")
def form_qr(request: Request, _: Anyone) -> FormCode:
    from dronelog.exports.manifest_pdf import qr_matrix  # segno
    url = f"{str(request.base_url).rstrip('/')}/#/request"
    return FormCode(url=url, qr=qr_matrix(url))


@router.get("/{request_id}", response_model=RequestPublic,
            summary="A transport request with its history")
def get_request(request_id: RequestPath, request: Request, conn: ConnectionDep,
                user: Anyone) -> RequestPublic:
    row = _readable(conn, request_id, user)
    public = _View(conn, request).public(row)
    public.history = [ChangePublic(action=c.action, from_state=c.from_state,
                                   to_state=c.to_state, at=as_utc(c.at), by=c.by,
                                   detail=json.loads(c.detail))
                      for c in records.history(conn, request_id)]
    return public


@router.get("/{request_id}/drones", response_model=list[SuggestionPublic],
            summary="The drones that can fly this request now, the suggested one first: "
                    "available, battery for the trip with reserve, nearest (docs/dispatch.md)")
def suggestions(request_id: RequestPath, request: Request, conn: ConnectionDep,
                _: Dispatcher) -> list[SuggestionPublic]:
    row = _readable(conn, request_id, None)
    found, registry = _candidates(conn, request, row)
    return [SuggestionPublic(drone_id=s.drone_id, registration_number=registry.get(s.drone_id),
                             to_origin_m=round(s.to_origin_m), needed_pct=round(s.needed_pct, 1),
                             battery_pct=s.battery_pct) for s in found[:20]]


class ServiceLevelRow(PeriodRequests):
    """A day's row: the period report's request figures (schemas.py), for one day."""

    day: date


@reports.get("/requests", response_model=list[ServiceLevelRow],
             summary="The transport requests' service level of a day: request to pickup, per "
                     "route and priority (the requests made that day, network time zone)")
def request_service_level(request: Request, conn: ConnectionDep, _: Anyone,
                          day: Annotated[date, day_query("the day, network time zone")]
                          ) -> list[ServiceLevelRow]:
    zone = request.app.state.settings.network_timezone
    return [ServiceLevelRow(**row) for row in service_level.compute(conn, day, zone)]


# --- writing ----------------------------------------------------------------------------------


@router.post("", response_model=RequestPublic, status_code=201,
             summary="Request a flight for sealed boxes (site staff: from their own site)")
def create_request(body: RequestCreate, request: Request, conn: ConnectionDep,
                   user: Anyone) -> RequestPublic:
    now = request.app.state.clock.now()
    if user.role is Role.LAB:
        if body.origin_site_id not in (None, user.site_id):
            raise Problem(403, "Forbidden", "site staff request flights from their own site")
        origin = user.site_id
    elif body.origin_site_id is None:
        raise Problem(422, "Origin missing", "name the origin_site_id of the request")
    else:
        origin = body.origin_site_id
    if origin == body.destination_site_id:
        raise Problem(422, "Same site", "the destination is the origin")
    known = set(conn.execute(select(SITE.c.id).where(
        SITE.c.id.in_([origin, body.destination_site_id]))).scalars())
    if known != {origin, body.destination_site_id}:
        raise Problem(422, "Unknown site", "origin and destination must be sites of the "
                      "network (GET /api/v1/sites)")
    ready_at = body.ready_at or now
    if not now - READY_HORIZON <= ready_at <= now + READY_HORIZON:
        raise Problem(422, "Ready time out of range", "ready_at is within 7 days of now")
    request_id = records.new_request_id(now, request.app.state.settings.network_timezone)
    records.create(conn, {"id": request_id, "origin_site_id": origin,
                          "destination_site_id": body.destination_site_id,
                          "priority": body.priority, "source": "site", "requested_at": now,
                          "ready_at": ready_at, "containers": sorted(set(body.containers))},
                   f"user:{user.id}", now)
    audit.record(conn, user, "request.create", request_id, now, origin_site_id=origin,
                 destination_site_id=body.destination_site_id, priority=body.priority,
                 containers=sorted(set(body.containers)))
    return _View(conn, request).public(records.load(conn, request_id))


@router.post("/{request_id}/actions", response_model=RequestPublic,
             summary="Assign, reassign, hand to a courier, pick up, deliver, cancel, or enter "
                     "the airspace approval",
             responses={403: {"description": "the role may not take this action"},
                        409: {"description": "not in a state that allows it, or no drone"},
                        422: {"description": "the flight plan was refused"}})
def act(request_id: RequestPath, body: RequestAction, request: Request, conn: ConnectionDep,
        user: Anyone) -> RequestPublic:
    state = request.app.state
    now = state.clock.now()
    row = records.load(conn, request_id, for_update=True)
    if row is None or not _may_read(row, user):
        raise Problem(404, "Not found", f"no transport request {request_id!r}")
    _may_act(row, user, body.action)
    by = f"user:{user.id}"
    if body.action == "approve":
        _approve(conn, request, row, body, user, now)
    else:
        action = Action(body.action)
        step = Step(action, now, drone_id=body.drone_id, courier_id=body.courier_id)
        extra: dict = {}
        if action in (Action.ASSIGN, Action.REASSIGN):
            step, extra = _assignment(conn, request, row, body, now)
        outcome = transition(records.to_domain(row), step)
        if isinstance(outcome, Refused):
            raise Problem(409, "Conflict", outcome.reason)
        after, change = outcome
        if row.flight_id and not row.flight_held and (
                action in (Action.REASSIGN, Action.TO_COURIER, Action.CANCEL)):
            _abort(request, user, row, f"request {row.id}: {action.value}")
        if action in (Action.ASSIGN, Action.REASSIGN) and not extra["flight_held"]:
            _send(request, user, after.drone_id, after.flight_id, row,
                  extra["planned_departure"])
        records.save(conn, after, change, by, **extra)
    audit.record(conn, user, f"request.{body.action}", request_id, now,
                 **body.model_dump(exclude_none=True, exclude={"action"}))
    return _View(conn, request).public(records.load(conn, request_id))


def _may_act(row, user: User, action: str) -> None:
    if user.role is not Role.LAB:
        return
    allowed = {"cancel": row.origin_site_id, "pick_up": row.origin_site_id,
               "deliver": row.destination_site_id}
    if allowed.get(action) != user.site_id or (
            action in ("pick_up", "deliver") and row.carrier != "courier"):
        raise Problem(403, "Forbidden", "site staff cancel their site's requests and record a "
                      "courier's pickup and delivery at their site; dispatchers do the rest")


def _assignment(conn: Connection, request: Request, row, body: RequestAction,
                now: datetime) -> tuple[Step, dict]:
    """The step of an assignment, and what the domain does not decide: the drone (the
    suggested one unless named), its registration number, the flight id, the departure, and
    whether the flight waits for its airspace approval."""
    rules = request.app.state.dispatch
    drone_id = body.drone_id
    if drone_id is None:
        found, _ = _candidates(conn, request, row)
        if not found:
            raise Problem(409, "No drone", "no drone is available with battery enough for "
                          "this route; name one, or hand the boxes to a courier")
        drone_id = found[0].drone_id
    drone = conn.execute(select(D).where(D.c.id == drone_id)).first()
    if drone is None or drone.retired:
        raise Problem(409, "Unknown drone", f"{drone_id!r} is not a drone in service")
    assignments = conn.execute(select(func.count()).select_from(records.CHANGE).where(and_(
        records.CHANGE.c.request_id == row.id,
        records.CHANGE.c.action.in_(("assign", "reassign"))))).scalar_one()
    flight_id = f"{row.id}-F{assignments + 1}"
    approval = body.approval_ref or row.approval_ref
    extra = {"drone_registration": drone.registration_number,
             "planned_departure": max(as_utc(row.ready_at), now),
             "approval_ref": approval,
             "flight_held": rules.needs_approval(row.origin_site_id,
                                                 row.destination_site_id) and not approval}
    return Step(Action(body.action), now, drone_id=drone_id, flight_id=flight_id), extra


def _approve(conn: Connection, request: Request, row, body: RequestAction, user: User,
             now: datetime) -> None:
    if not body.approval_ref:
        raise Problem(422, "Approval missing", "enter the approval_ref")
    if row.state in {s.value for s in FINAL}:
        raise Problem(409, "Conflict", f"the request is {row.state}")
    if row.flight_held and row.state == RequestState.ASSIGNED.value:
        _send(request, user, row.drone_id, row.flight_id, row, as_utc(row.planned_departure))
    records.note(conn, row.id, "approve", row.state, now, f"user:{user.id}",
                 approval_ref=body.approval_ref, flight_held=False)


def _sender(user: User) -> Sender:
    return Sender.staff(user.id, user.site_id or "")


def _send(request: Request, user: User, drone_id: str, flight_id: str, row,
          departure: datetime) -> None:
    state = request.app.state
    try:
        send_plan(state.engine, state.rules, state.clock, _sender(user),
                  Plan(drone_id, flight_id, row.origin_site_id, row.destination_site_id,
                       departure))
    except PlanRefused as error:
        raise Problem(422, "Flight plan refused", str(error)) from error


def _abort(request: Request, user: User, row, reason: str) -> None:
    state = request.app.state
    try:
        send_abort(state.engine, state.rules, state.clock, _sender(user), row.drone_id,
                   row.flight_id, reason)
    except PlanRefused as error:
        raise Problem(422, "Flight plan refused", str(error)) from error


# --- helpers ----------------------------------------------------------------------------------


def _may_read(row, user: User | None) -> bool:
    return (user is None or user.role is not Role.LAB
            or user.site_id in (row.origin_site_id, row.destination_site_id))


def _readable(conn: Connection, request_id: str, user: User | None):
    row = records.load(conn, request_id)
    if row is None or not _may_read(row, user):
        raise Problem(404, "Not found", f"no transport request {request_id!r}")
    return row


def _candidates(conn: Connection, request: Request, row) -> tuple[list[Suggestion], dict]:
    from dronelog.api.routes.fleet import FLEET
    view = _View(conn, request)
    route = view.route(row.origin_site_id, row.destination_site_id)
    if route is None:
        return [], {}
    flying = set(conn.execute(select(F.c.drone_id).where(
        F.c.state.in_(("airborne", "diverted")))).scalars())
    taken = set(conn.execute(select(REQUEST.c.drone_id).where(and_(
        REQUEST.c.state == RequestState.ASSIGNED.value, REQUEST.c.id != row.id,
        REQUEST.c.drone_id.is_not(None)))).scalars())
    registry = dict(conn.execute(select(D.c.id, D.c.registration_number)).all())
    drones = [DroneState(r.drone_id, (r.lat, r.lon) if r.lat is not None else None,
                         r.battery_pct, r.online, r.drone_id in flying | taken, r.retired,
                         registry.get(r.drone_id))
              for r in conn.execute(FLEET[conn.dialect.name].where(D.c.retired.is_(False)))]
    return candidates(drones, route, request.app.state.dispatch.consumption), registry


class _View:
    """Rows as the API shows them, with the flight's state and ETA."""

    def __init__(self, conn: Connection, request: Request) -> None:
        self.conn, self.now = conn, request.app.state.clock.now()
        self.rules = request.app.state.dispatch
        self._sites = self._routes = None

    def route(self, origin: str, destination: str):
        if self._sites is None:
            self._sites, self._routes = repo.sites(self.conn), repo.routes(self.conn)
        return repo.route_points(self._sites, self._routes, origin, destination)

    def public(self, row) -> RequestPublic:
        flight = None
        if row.flight_id:
            flight = self.conn.execute(select(F).where(F.c.flight_id == row.flight_id)).first()
        picked = as_utc(row.picked_up_at)
        domain = records.to_domain(row)
        return RequestPublic(
            id=row.id, origin_site_id=row.origin_site_id,
            destination_site_id=row.destination_site_id, priority=row.priority,
            state=RequestState(row.state), source=row.source,
            containers=json.loads(row.containers), requested_at=as_utc(row.requested_at),
            requested_by=row.requested_by, ready_at=as_utc(row.ready_at),
            waiting_s=waiting(domain, picked or self.now).total_seconds(), carrier=row.carrier,
            drone_id=row.drone_id, drone_registration=row.drone_registration,
            flight_id=row.flight_id, flight_state=flight.state if flight else None,
            planned_departure=as_utc(row.planned_departure), eta=self._eta(row, flight),
            approval_ref=row.approval_ref, flight_held=row.flight_held,
            courier_id=row.courier_id, picked_up_at=picked,
            delivered_at=as_utc(row.delivered_at))

    def _eta(self, row, flight) -> datetime | None:
        if not row.flight_id or row.flight_held or row.state in ("delivered", "cancelled"):
            return None
        if flight is not None and flight.landed_at is not None:
            return as_utc(flight.landed_at)
        route = self.route(row.origin_site_id, row.destination_site_id)
        if route is None:
            return None
        if flight is not None and flight.state in ("airborne", "diverted"):
            track = [t for t in repo.recent_tracks(self.conn, [row.drone_id],
                                                   self.now - RECENT_TRACK).get(row.drone_id, [])
                     if t.flight_id == row.flight_id]
            return estimate_eta(route, track, self.now,
                                cruise_speed_mps=self.rules.cruise_speed_mps).arrival_at
        departure = max(as_utc(row.planned_departure) or self.now, self.now)
        return departure + timedelta(seconds=route_length_m(route) / self.rules.cruise_speed_mps)
