"""Stability per specimen type: how long a specimen keeps from collection to the lab, in
what temperature band, and what must never happen to it (a blood culture is never
refrigerated).

The catalogue is read from TOML (config/stability.toml):

    [[specimen_type]]
    id = "urine"                       # a stable code, the SpecimenDefinition's id
    name = "Urine: routine, chemistry"
    name_zh = "尿液：常规、生化"
    kinds = ["urine"]                  # the specimen kinds it applies to (may be empty)
    blood_products = []                # for blood units: the products it applies to
    max_transport_min = 120            # collection to lab receipt
    low_c = 2                          # optional temperature band in transport
    high_c = 10
    do_not_refrigerate = false         # raises the band's floor to 15 °C
    note = "..."

A specimen is matched by its kind (and, for a blood unit, its product). An entry with no
kinds is listed and exported but matches no specimen: the test groups of the defaults'
table (serum chemistry, coagulation, blood count, ...) need the tests a specimen carries,
which the contract does not send yet. Where several entries match, all hold: the shortest
time, the narrowest band, every flag.

`SpecimenLimits` composes the catalogue with the turnaround policies: a specimen's
deadline and temperature band are the stricter of the two.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dronelog.contract.messages import BloodProduct, Identifier, SpecimenKind
from dronelog.domain.facts import SpecimenFacts
from dronelog.domain.policies import PolicyBook, PolicyError, TurnaroundPolicy
from dronelog.domain.temperature import TEMPERATURE_RANGES, TemperatureRange

# The floor of a band that must not be refrigerated: room temperature's low end
# (docs/domain.md: ambient about 15-25 °C).
NOT_REFRIGERATED_FLOOR_C = 15.0


class StabilityError(PolicyError):
    """A stability catalogue that cannot be used, with where and why (a policy error: the
    scheduler refuses to start on either alike)."""


Minutes = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Celsius = Annotated[float, Field(ge=-100, le=60, allow_inf_nan=False)]


class SpecimenStability(BaseModel):
    """One specimen type of the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(min_length=1, max_length=200)
    kinds: tuple[SpecimenKind, ...] = ()
    blood_products: tuple[BloodProduct, ...] = ()
    max_transport_min: Minutes
    low_c: Celsius | None = None
    high_c: Celsius | None = None
    do_not_refrigerate: bool = False
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _band_in_order(self) -> "SpecimenStability":
        if self.low_c is not None and self.high_c is not None and self.low_c > self.high_c:
            raise ValueError("low_c must not be above high_c")
        if self.blood_products and "blood_unit" not in self.kinds:
            raise ValueError("blood_products apply only to kinds = [\"blood_unit\"]")
        return self

    def matches(self, facts: SpecimenFacts) -> bool:
        return facts.kind in self.kinds and (
            not self.blood_products or facts.blood_product in self.blood_products)

    @property
    def floor_c(self) -> float | None:
        """The lowest temperature allowed, with the do-not-refrigerate flag applied."""
        floors = [c for c in (self.low_c, NOT_REFRIGERATED_FLOOR_C if self.do_not_refrigerate
                              else None) if c is not None]
        return max(floors) if floors else None


@dataclass(frozen=True)
class Stability:
    """What the catalogue holds a specimen to: every matching entry at once."""

    ids: tuple[str, ...]
    max_transport_min: float
    floor_c: float | None
    ceiling_c: float | None
    do_not_refrigerate: bool

    def until(self, collected_at: datetime) -> datetime:
        return collected_at + timedelta(minutes=self.max_transport_min)


class _Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specimen_type: tuple[SpecimenStability, ...]

    @model_validator(mode="after")
    def _ids_unique(self) -> "_Catalogue":
        ids = [entry.id for entry in self.specimen_type]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self


class StabilityCatalogue:
    """The specimen types of a network, built from the parsed TOML mapping."""

    def __init__(self, config: Mapping[str, Any], source: str = "stability catalogue") -> None:
        try:
            self._catalogue = _Catalogue.model_validate(config)
        except ValidationError as error:
            raise StabilityError(_describe(error, source)) from None

    @classmethod
    def load(cls, path: Path) -> "StabilityCatalogue":
        with path.open("rb") as file:
            try:
                config = tomllib.load(file)
            except tomllib.TOMLDecodeError as error:
                raise StabilityError(f"{path}: not valid TOML: {error}") from None
        return cls(config, source=str(path))

    @classmethod
    def default(cls) -> "StabilityCatalogue":
        """The built-in catalogue from docs/domain.md, the same as config/stability.toml."""
        return cls({"specimen_type": _BUILT_IN}, source="built-in stability catalogue")

    @property
    def entries(self) -> tuple[SpecimenStability, ...]:
        return self._catalogue.specimen_type

    def entry(self, entry_id: str) -> SpecimenStability | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def for_specimen(self, facts: SpecimenFacts) -> Stability | None:
        matching = [entry for entry in self.entries if entry.matches(facts)]
        if not matching:
            return None
        floors = [e.floor_c for e in matching if e.floor_c is not None]
        ceilings = [e.high_c for e in matching if e.high_c is not None]
        return Stability(ids=tuple(e.id for e in matching),
                         max_transport_min=min(e.max_transport_min for e in matching),
                         floor_c=max(floors) if floors else None,
                         ceiling_c=min(ceilings) if ceilings else None,
                         do_not_refrigerate=any(e.do_not_refrigerate for e in matching))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StabilityCatalogue) and self._catalogue == other._catalogue


@dataclass(frozen=True)
class SpecimenLimits:
    """The turnaround policies and the stability catalogue together: for each specimen the
    stricter deadline and the narrower temperature band win."""

    policies: PolicyBook
    catalogue: StabilityCatalogue

    @classmethod
    def from_files(cls, policy_file: str | None, stability_file: str | None
                   ) -> "SpecimenLimits":
        """From the settings' files (DRONELOG_POLICY_FILE, DRONELOG_STABILITY_FILE); the
        built-in book and catalogue where a file is not given."""
        return cls(PolicyBook.load(Path(policy_file)) if policy_file else PolicyBook.default(),
                   StabilityCatalogue.load(Path(stability_file)) if stability_file
                   else StabilityCatalogue.default())

    def for_specimen(self, facts: SpecimenFacts) -> TurnaroundPolicy:
        policy = self.policies.for_specimen(facts)
        stability = self.catalogue.for_specimen(facts)
        if stability is not None and stability.max_transport_min < policy.target_min:
            return replace(policy, target_min=stability.max_transport_min)
        return policy

    def stability_until(self, facts: SpecimenFacts, collected_at: datetime) -> datetime | None:
        """The last moment the specimen may reach the lab; None when no type matches."""
        stability = self.catalogue.for_specimen(facts)
        return stability.until(collected_at) if stability is not None else None

    def temperature_range(self, facts: SpecimenFacts) -> TemperatureRange | None:
        """The specimen's temperature class's range, narrowed by its stability band; None
        for a class without a range."""
        band = TEMPERATURE_RANGES.get(facts.temperature_class)
        stability = self.catalogue.for_specimen(facts)
        if band is None or stability is None:
            return band
        low = max(band.low_c, stability.floor_c) if stability.floor_c is not None else band.low_c
        high = (min(band.high_c, stability.ceiling_c) if stability.ceiling_c is not None
                else band.high_c)
        return replace(band, low_c=low, high_c=high)


def stability_exceeded(stability_until: datetime | None, received_at: datetime | None,
                       now: datetime) -> bool:
    """Past its stability at receipt (or, not yet received, already now): reject it or
    collect again. Exactly at the limit is still within it."""
    if stability_until is None:
        return False
    return (received_at or now) > stability_until


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid stability catalogue"]
    for item in error.errors():
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                        for part in item["loc"]).lstrip(".")
        lines.append(f"  {where or '(top level)'}: {item['msg']}")
    return "\n".join(lines)


# docs/domain.md, "Stability per specimen type": a 2026 Chinese hospital rule table
# (常用检验标本运输和保存时限要求) and, for red cells, ISBT 2020.
_BUILT_IN: list[dict[str, Any]] = [
    {"id": "whole-blood-gas", "name": "Whole blood: ammonia, blood gas, lactate",
     "name_zh": "全血：血氨、血气、乳酸", "kinds": ["blood_gas"], "max_transport_min": 15,
     "note": "on ice; analysed within 1 h"},
    {"id": "serum-labile", "name": "Serum: glucose, LDH, K, CK-MB, cortisol",
     "name_zh": "血清：葡萄糖、乳酸脱氢酶、钾、CK-MB、皮质醇", "max_transport_min": 30,
     "note": "glucose needs NaF"},
    {"id": "serum-chemistry",
     "name": "Serum: proteins, enzymes, renal, lipids, hormones, tumour markers, "
             "antibodies/antigens",
     "name_zh": "血清：蛋白、酶、肾功能、血脂、激素、肿瘤标志物、抗体/抗原",
     "max_transport_min": 120},
    {"id": "plasma-coagulation", "name": "Plasma: coagulation", "name_zh": "血浆：凝血",
     "max_transport_min": 240, "note": "APTT 4 h at room temperature"},
    {"id": "whole-blood-haematology",
     "name": "Whole blood: blood count, blood group, ESR, flow cytometry",
     "name_zh": "全血：血常规、血型、血沉、流式细胞", "max_transport_min": 480},
    {"id": "urine", "name": "Urine: routine, chemistry", "name_zh": "尿液：常规、生化",
     "kinds": ["urine"], "max_transport_min": 120},
    {"id": "csf-body-fluids", "name": "CSF and body fluids", "name_zh": "脑脊液及体液",
     "max_transport_min": 60},
    {"id": "microbiology", "name": "Microbiology", "name_zh": "微生物",
     "kinds": ["microbiology"], "max_transport_min": 120,
     "note": "30 min for small volumes"},
    {"id": "blood-culture", "name": "Blood culture", "name_zh": "血培养",
     "max_transport_min": 120, "do_not_refrigerate": True,
     "note": "must not be refrigerated"},
    {"id": "molecular", "name": "Molecular: viral nucleic acid, genes",
     "name_zh": "分子：病毒核酸、基因", "max_transport_min": 240},
    {"id": "red-cells-unit", "name": "Red cells (blood unit)", "name_zh": "红细胞（血液制品）",
     "kinds": ["blood_unit"], "blood_products": ["red_cells"], "max_transport_min": 1440,
     "low_c": 2, "high_c": 10,
     "note": "ISBT 2020; above 10 °C: transfuse within 24 h or destroy"},
]
