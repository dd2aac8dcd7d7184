"""A container's manifest as a printable PDF (A4): the container, seal, sites, flight, a QR
code of the container id, and one row per tube (barcode, kind, priority, temperature class).

fpdf2 writes the PDF (pure Python, maintained, embeds and subsets TrueType/OpenType fonts,
also from a .ttc collection); segno makes the QR code (pure Python, maintained, no imaging
dependency), drawn here as vector squares. Chinese needs a CJK font: the first of
`CJK_FONTS` that exists is embedded (Debian's fonts-noto-cjk: Noto Sans CJK SC). Without
one, the PDF is written in English with the core Helvetica font, every identifier intact.
"""

from pathlib import Path
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF

from dronelog.domain.manifests import Manifest

# (file, face index in a collection); Noto Sans CJK's SC face is number 2 in Debian's .ttc
CJK_FONTS = ((Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),
             (Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"), 2))

_LABELS = {
    "title": ("标本运输装箱清单", "Specimen shipment manifest"),
    "container": ("箱号", "Container"), "seal": ("封签", "Seal"),
    "from": ("发出", "From"), "to": ("送往", "To"), "packed": ("装箱时间", "Packed"),
    "flight": ("航班 / 无人机", "Flight / drone"), "none": ("尚未装机", "not loaded yet"),
    "barcode": ("条码", "Barcode"), "kind": ("类型", "Kind"),
    "priority": ("优先级", "Priority"), "temperature": ("温度要求", "Temperature"),
    "count": ("共 {n} 管", "{n} tubes"),
}
_KIND = {"blood_sample": ("血液标本", "Blood sample"), "blood_gas": ("血气标本", "Blood gas"),
         "blood_unit": ("血液制品", "Blood unit"), "pathology": ("病理标本", "Pathology"),
         "microbiology": ("微生物标本", "Microbiology"), "urine": ("尿液标本", "Urine"),
         "other": ("其他", "Other")}
_PRIORITY = {"stat": ("急诊", "STAT"), "urgent": ("加急", "Urgent"),
             "routine": ("常规", "Routine")}
_TEMPERATURE = {"refrigerated": ("冷藏 2–8 °C", "Refrigerated 2-8 C"),
                "ambient": ("常温 15–25 °C", "Ambient 15-25 C"),
                "red_cells": ("红细胞 1–10 °C", "Red cells 1-10 C"),
                "platelets": ("血小板 20–24 °C", "Platelets 20-24 C"),
                "frozen": ("冷冻 ≤ −18 °C", "Frozen -18 C or colder")}


def cjk_font() -> tuple[Path, int] | None:
    return next(((path, face) for path, face in CJK_FONTS if path.exists()), None)


def qr_matrix(text: str) -> list[str]:
    """The QR code of `text` as rows of '1' (dark) and '0', with no quiet zone."""
    return ["".join("1" if dark else "0" for dark in row)
            for row in segno.make(text, error="m", micro=False).matrix]


def manifest_pdf(manifest: Manifest, site_names: dict[str, tuple[str, str]],
                 zone: ZoneInfo) -> bytes:
    """The PDF. `site_names`: site id → (Chinese name, English name)."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Manifest {manifest.container_id}")
    pdf.set_creator("dronelog")
    font = cjk_font()
    if font:
        pdf.add_font("cjk", "", str(font[0]), collection_font_number=font[1])
        family = "cjk"
    else:
        family = "helvetica"

    def text(pair: tuple[str, str]) -> str:
        return f"{pair[0]} {pair[1]}" if font else pair[1]

    def site(site_id: str | None) -> str:
        if not site_id:
            return "—" if font else "-"
        zh, en = site_names.get(site_id, (site_id, site_id))
        return f"{zh} {en} ({site_id})" if font else f"{en} ({site_id})"

    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.cell(0, 10, text(_LABELS["title"]), new_x="LMARGIN", new_y="NEXT")
    _qr(pdf, manifest.container_id, x=160, y=10, size=38)
    pdf.set_font(family, size=11)
    loading = manifest.loading
    rows = [("container", manifest.container_id), ("seal", manifest.seal_id or "-"),
            ("from", site(manifest.origin_site_id)), ("to", site(manifest.destination_site_id)),
            ("packed", manifest.packed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")),
            ("flight", f"{loading.flight_id} / {loading.drone_id}" if loading
             else text(_LABELS["none"]))]
    for key, value in rows:
        pdf.cell(45, 7, text(_LABELS[key]))
        pdf.cell(100, 7, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    widths = (12, 48, 45, 35, 50)
    header = ("#", text(_LABELS["barcode"]), text(_LABELS["kind"]),
              text(_LABELS["priority"]), text(_LABELS["temperature"]))
    pdf.set_font(family, size=9)
    for width, value in zip(widths, header, strict=True):
        pdf.cell(width, 7, value, border=1)
    pdf.ln()
    for number, tube in enumerate(manifest.tubes, start=1):
        cells = (str(number), tube.barcode, _pick(_KIND, tube.kind, font),
                 _pick(_PRIORITY, tube.priority, font),
                 _pick(_TEMPERATURE, tube.temperature_class, font))
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 7, value, border=1)
        pdf.ln()
    pdf.ln(3)
    count = _LABELS["count"]
    pdf.cell(0, 7, text((count[0].format(n=len(manifest.tubes)),
                         count[1].format(n=len(manifest.tubes)))))
    return bytes(pdf.output())


def _pick(names: dict[str, tuple[str, str]], value: str | None, cjk: bool) -> str:
    if value is None:
        return "?"
    zh, en = names.get(value, (value, value))
    return f"{zh} / {en}" if cjk else en


def _qr(pdf: FPDF, text: str, x: float, y: float, size: float) -> None:
    rows = qr_matrix(text)
    module = size / (len(rows) + 8)  # a quiet zone of 4 modules on each side
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark == "1":
                pdf.rect(x + (c + 4) * module, y + (r + 4) * module, module, module, style="F")
