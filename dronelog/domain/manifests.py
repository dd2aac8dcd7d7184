"""A container's manifest, and the receiving lab's check of a container against it.

A **manifest** is what a container should hold: every tube whose newest `packed` event put it
into that container (a tube re-packed into another box belongs to the other box from then
on), with the description the custody rules chose for it, the seal it was packed with and the
flight it was loaded onto. It is derived from the custody record, never typed in.

**Reconciliation** at the receiving lab: receiving a container means scanning its tubes. Each
scan is judged at once against the manifest:

- `expected`: on this container's manifest;
- `foreign`: packed into another container (which one is named);
- `extra`: on no manifest at all.

When the lab says the container is empty, every manifest tube it did not scan is `missing`.
Each discrepancy (foreign, extra, missing) becomes a latched `manifest_discrepancy` alert
on the tube, which reaches the receiving lab and the site that packed the container.

Pure: no I/O, no clock.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dronelog.domain.alerts import AlertKind, Condition


@dataclass(frozen=True)
class Packing:
    """One `packed` event: a tube put into a sealed container at a site."""

    barcode: str
    container_id: str
    seal_id: str | None
    site_id: str
    event_time: datetime
    event_id: str

    @property
    def order(self) -> tuple:
        return (self.event_time, self.event_id)


@dataclass(frozen=True)
class Tube:
    """A tube on a manifest, as the custody rules describe it (None where undescribed)."""

    barcode: str
    kind: str | None = None
    blood_product: str | None = None
    priority: str | None = None
    temperature_class: str | None = None
    destination_site_id: str | None = None


@dataclass(frozen=True)
class Loading:
    """The flight a container was handed to."""

    flight_id: str
    drone_id: str
    event_time: datetime


@dataclass(frozen=True)
class Manifest:
    container_id: str
    seal_id: str | None
    origin_site_id: str
    packed_at: datetime
    tubes: tuple[Tube, ...]
    loading: Loading | None = None

    @property
    def barcodes(self) -> frozenset[str]:
        return frozenset(t.barcode for t in self.tubes)

    @property
    def destination_site_id(self) -> str | None:
        """The tubes' destination when they share one (a box flies to one place)."""
        destinations = {t.destination_site_id for t in self.tubes} - {None}
        return next(iter(destinations)) if len(destinations) == 1 else None

    @property
    def temperature_classes(self) -> frozenset[str]:
        return frozenset(t.temperature_class for t in self.tubes) - {None}


def containers_of(packings: Iterable[Packing]) -> dict[str, Packing]:
    """Each tube's newest packing (by event time, then event id): the container it is in."""
    newest: dict[str, Packing] = {}
    for packing in packings:
        kept = newest.get(packing.barcode)
        if kept is None or packing.order > kept.order:
            newest[packing.barcode] = packing
    return newest


def manifest(container_id: str, packings: Iterable[Packing], tubes: Mapping[str, Tube],
             loading: Loading | None = None) -> Manifest | None:
    """The manifest of `container_id`, or None when no tube is (still) packed into it.
    `packings` are the packed events of the tubes concerned (also their packings into other
    containers, which take a re-packed tube off this one)."""
    inside = sorted((p for p in containers_of(packings).values()
                     if p.container_id == container_id), key=lambda p: p.barcode)
    if not inside:
        return None
    last = max(inside, key=lambda p: p.order)
    return Manifest(container_id=container_id, seal_id=last.seal_id,
                    origin_site_id=last.site_id, packed_at=last.event_time,
                    tubes=tuple(tubes.get(p.barcode, Tube(p.barcode)) for p in inside),
                    loading=loading)


class Finding(StrEnum):
    EXPECTED = "expected"
    FOREIGN = "foreign"
    EXTRA = "extra"
    MISSING = "missing"


DISCREPANCIES = frozenset({Finding.FOREIGN, Finding.EXTRA, Finding.MISSING})


@dataclass(frozen=True)
class Check:
    """What one tube of a container turned out to be at the receiving lab."""

    barcode: str
    finding: Finding
    packed_container_id: str | None = None  # for a foreign tube: the container it was packed in

    @property
    def discrepancy(self) -> bool:
        return self.finding in DISCREPANCIES


def check_scan(barcode: str, expected: Manifest, packed_in: Packing | None) -> Check:
    """A tube scanned out of `expected`'s container, judged at once. `packed_in` is the
    tube's newest packing anywhere (None if it was never packed)."""
    if barcode in expected.barcodes:
        return Check(barcode, Finding.EXPECTED)
    if packed_in is not None:
        return Check(barcode, Finding.FOREIGN, packed_in.container_id)
    return Check(barcode, Finding.EXTRA)


def missing(expected: Manifest, scanned: Iterable[str]) -> tuple[Check, ...]:
    """The manifest's tubes not scanned, once the lab says the container is empty."""
    seen = set(scanned)
    return tuple(Check(b, Finding.MISSING) for b in sorted(expected.barcodes - seen))


def discrepancy_condition(check: Check, expected: Manifest, receiving_site_id: str
                          ) -> Condition | None:
    """The alert a discrepancy raises on the tube: at the receiving lab, and reaching the
    site that packed the container; None for an expected tube."""
    if not check.discrepancy:
        return None
    details = {"container_id": expected.container_id, "finding": check.finding.value,
               "at_site_id": receiving_site_id}
    if check.packed_container_id:
        details["packed_container_id"] = check.packed_container_id
    what = {Finding.MISSING: "missing from", Finding.EXTRA: "extra in",
            Finding.FOREIGN: f"packed into {check.packed_container_id}, found in"}
    return Condition("specimen", check.barcode, AlertKind.MANIFEST_DISCREPANCY,
                     f"{check.barcode} {what[check.finding]} container "
                     f"{expected.container_id} at {receiving_site_id}",
                     details=details, site_id=receiving_site_id,
                     origin_site_id=expected.origin_site_id, at_site_id=receiving_site_id)
