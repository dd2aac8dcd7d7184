"""Turnaround policies: how long a specimen may take from collection to lab receipt, and
when to warn, by priority, with overrides by kind, origin and destination.

The book is read from TOML (config/turnaround.toml):

    [defaults.stat]            # one table per priority: stat, urgent, routine
    target_min = 45
    warning_fraction = 0.75

    [[overrides]]              # match keys: priority, kind, origin, destination
    kind = "blood_gas"
    target_min = 30
    ceiling = true

For a specimen, the policy starts from its priority's defaults; every override whose match
keys all match is applied field by field, the less specific first (fewer match keys), file
order among equals, so the most specific override has the last word. An override with
`ceiling = true` is a limit, not a value: each duration it sets becomes the smaller of the
current one and its own, and ceilings are applied after all other overrides, so no more
specific override can lift them. A kind's time limit (a blood gas analysed within 30 min)
is such a ceiling: it holds for every priority and never lengthens a shorter target.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dronelog.contract.messages import Identifier, Priority, SpecimenKind
from dronelog.domain.facts import SpecimenFacts
from dronelog.domain.turnaround import DEFAULT_TARGET_MIN, DEFAULT_WARNING_FRACTION


@dataclass(frozen=True)
class TurnaroundPolicy:
    """The budget of one specimen: target_min from collection to lab receipt, a warning at
    warning_fraction of it, and optional budgets for the legs."""

    target_min: float
    warning_fraction: float = DEFAULT_WARNING_FRACTION
    collected_to_loaded_min: float | None = None
    flight_min: float | None = None
    landed_to_received_min: float | None = None

    def deadline(self, collected_at: datetime) -> datetime:
        return collected_at + timedelta(minutes=self.target_min)

    def warning_at(self, collected_at: datetime) -> datetime:
        return collected_at + timedelta(minutes=self.target_min * self.warning_fraction)


class PolicyError(ValueError):
    """A turnaround policy file or mapping that cannot be used, with where and why."""


_DURATIONS = ("target_min", "collected_to_loaded_min", "flight_min", "landed_to_received_min")
_MATCH_KEYS = ("priority", "kind", "origin", "destination")

Minutes = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Default(_Strict):
    target_min: Minutes
    warning_fraction: Fraction = DEFAULT_WARNING_FRACTION
    collected_to_loaded_min: Minutes | None = None
    flight_min: Minutes | None = None
    landed_to_received_min: Minutes | None = None


class _Defaults(_Strict):
    stat: _Default
    urgent: _Default
    routine: _Default


class _Override(_Strict):
    priority: Priority | None = None
    kind: SpecimenKind | None = None
    origin: Identifier | None = None
    destination: Identifier | None = None
    target_min: Minutes | None = None
    warning_fraction: Fraction | None = None
    collected_to_loaded_min: Minutes | None = None
    flight_min: Minutes | None = None
    landed_to_received_min: Minutes | None = None
    ceiling: bool = False

    @model_validator(mode="after")
    def _matches_and_sets_something(self) -> "_Override":
        if not any(getattr(self, key) is not None for key in _MATCH_KEYS):
            raise ValueError(f"an override needs at least one of {', '.join(_MATCH_KEYS)}")
        if not self._settings():
            raise ValueError("an override must set at least one of "
                             f"{', '.join(f.name for f in fields(TurnaroundPolicy))}")
        return self

    def _settings(self) -> dict[str, float]:
        names = (f.name for f in fields(TurnaroundPolicy))
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    @property
    def specificity(self) -> int:
        return sum(getattr(self, key) is not None for key in _MATCH_KEYS)

    def matches(self, facts: SpecimenFacts) -> bool:
        specimen = {"priority": facts.priority, "kind": facts.kind,
                    "origin": facts.origin_site_id, "destination": facts.destination_site_id}
        return all(getattr(self, key) in (None, specimen[key]) for key in _MATCH_KEYS)

    def apply(self, policy: TurnaroundPolicy) -> TurnaroundPolicy:
        changes = self._settings()
        if self.ceiling:
            for name in _DURATIONS:
                current = getattr(policy, name)
                if name in changes and current is not None:
                    changes[name] = min(current, changes[name])
        return replace(policy, **changes)


class _Book(_Strict):
    defaults: _Defaults
    overrides: list[_Override] = []


class PolicyBook:
    """The turnaround policies of a network, built from the parsed TOML mapping."""

    def __init__(self, config: Mapping[str, Any], source: str = "turnaround policy") -> None:
        try:
            self._book = _Book.model_validate(config)
        except ValidationError as error:
            raise PolicyError(_describe(error, source)) from None
        self._defaults = {
            priority: TurnaroundPolicy(**getattr(self._book.defaults, priority).model_dump())
            for priority in _Defaults.model_fields
        }

    @classmethod
    def load(cls, path: Path) -> "PolicyBook":
        with path.open("rb") as file:
            try:
                config = tomllib.load(file)
            except tomllib.TOMLDecodeError as error:
                raise PolicyError(f"{path}: not valid TOML: {error}") from None
        return cls(config, source=str(path))

    @classmethod
    def default(cls) -> "PolicyBook":
        """The built-in book from docs/domain.md, the same as config/turnaround.toml."""
        return cls(_BUILT_IN, source="built-in turnaround policy")

    def for_specimen(self, facts: SpecimenFacts) -> TurnaroundPolicy:
        if facts.priority not in self._defaults:
            raise ValueError(f"{facts.barcode}: unknown priority {facts.priority!r}")
        policy = self._defaults[facts.priority]
        # Ceilings last, then the less specific first; sorted is stable, so file order
        # settles the rest.
        matching = (o for o in self._book.overrides if o.matches(facts))
        for override in sorted(matching, key=lambda o: (o.ceiling, o.specificity)):
            policy = override.apply(policy)
        return policy

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyBook) and self._book == other._book

    def __repr__(self) -> str:
        return f"PolicyBook({self._book.model_dump(exclude_defaults=True)!r})"


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid turnaround policy"]
    for item in error.errors():
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                        for part in item["loc"]).lstrip(".")
        lines.append(f"  {where or '(top level)'}: {item['msg']}")
    return "\n".join(lines)


_BUILT_IN: dict[str, Any] = {
    "defaults": {priority: {"target_min": target, "warning_fraction": DEFAULT_WARNING_FRACTION}
                 for priority, target in DEFAULT_TARGET_MIN.items()},
    # CLSI H21: a blood gas is analysed within 30 minutes of collection.
    "overrides": [{"kind": "blood_gas", "target_min": 30.0, "ceiling": True}],
}
