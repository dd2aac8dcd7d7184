"""Temperature classes of specimens and blood products (see docs/domain.md, CLSI and
transfusion guidance): the allowed range in transport, and the set point a box is packed at."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TemperatureRange:
    low_c: float
    high_c: float
    set_point_c: float

    def contains(self, value_c: float) -> bool:
        return self.low_c <= value_c <= self.high_c


TEMPERATURE_RANGES: dict[str, TemperatureRange] = {
    "refrigerated": TemperatureRange(2.0, 8.0, 5.0),
    "ambient": TemperatureRange(15.0, 25.0, 20.0),
    "red_cells": TemperatureRange(1.0, 10.0, 4.0),
    "platelets": TemperatureRange(20.0, 24.0, 22.0),
    "frozen": TemperatureRange(-90.0, -18.0, -25.0),
}

# Out of range for longer than this is an excursion (a default; configurable where used).
EXCURSION_GRACE_S = 120.0
