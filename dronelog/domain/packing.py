"""Packing checks: a container is held at one temperature, so specimens of different
temperature classes packed into it cannot all stay in range (platelets at 20-24 °C beside
red cells at 1-10 °C: an excursion is certain). Found at `packed`, before the box flies.

Pure: the specimens now in containers in, the containers that mix classes out.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from dronelog.domain.temperature import TEMPERATURE_RANGES


@dataclass(frozen=True, slots=True)
class PackedSpecimen:
    barcode: str
    container_id: str
    temperature_class: str


@dataclass(frozen=True, slots=True)
class MixedContainer:
    container_id: str
    temperature_classes: tuple[str, ...]  # sorted
    barcodes: tuple[str, ...]  # sorted: every specimen in it


def mixed_containers(packed: Iterable[PackedSpecimen]) -> list[MixedContainer]:
    """The containers holding specimens of more than one temperature class. A specimen whose
    class is not known (never described) neither makes nor hides a mix."""
    by_container: dict[str, list[PackedSpecimen]] = defaultdict(list)
    for specimen in packed:
        by_container[specimen.container_id].append(specimen)
    mixed = []
    for container_id, contents in sorted(by_container.items()):
        classes = sorted({s.temperature_class for s in contents
                          if s.temperature_class in TEMPERATURE_RANGES})
        if len(classes) > 1:
            mixed.append(MixedContainer(container_id, tuple(classes),
                                        tuple(sorted(s.barcode for s in contents))))
    return mixed
