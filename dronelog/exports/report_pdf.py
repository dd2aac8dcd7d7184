"""The turnaround report of a period as a printable PDF (A4 landscape): per route, priority
and kind the counts and P50/P90 of each leg, then excursions per route, rejections by reason
and site, and manifest discrepancies. fpdf2 and the CJK font as the manifest PDF
(exports/manifest_pdf.py); without a CJK font the PDF is in English."""

from fpdf import FPDF
from sqlalchemy import Connection, select

from dronelog.api.schemas import PeriodReport
from dronelog.dispatch import service_level
from dronelog.exports.manifest_pdf import _KIND, _PRIORITY, cjk_font
from dronelog.storage.tables import Site
from dronelog.turnaround.period_report import Period, load, summarise

_T = {
    "title": ("周转时间报告", "Turnaround report"),
    "period": ("{first} 至 {last}（{zone}，分钟：P50 / P90）",
               "{first} to {last} ({zone}; minutes: P50 / P90)"),
    "route": ("航线", "Route"), "priority": ("优先级", "Priority"), "kind": ("类型", "Kind"),
    "n": ("标本", "Specimens"), "ontime": ("准时率", "On time"),
    "total": ("全程", "End to end"), "collected_to_loaded": ("采集至装机", "Coll. to loaded"),
    "loaded_to_took_off": ("装机至起飞", "Loaded to take-off"), "flight": ("飞行", "Flight"),
    "landed_to_received": ("落地至签收", "Landed to received"),
    "routes": ("各航线温度超限", "Excursions per route"), "excursions": ("超限", "Excursions"),
    "rejections": ("拒收（按原因和站点）", "Rejections by reason and site"),
    "reason": ("原因", "Reason"), "site": ("站点", "Site"), "count": ("数量", "Count"),
    "discrepancies": ("装箱清单不符", "Manifest discrepancies"),
    "finding": ("发现", "Finding"), "none": ("无", "none"),
    "requests": ("运输申请：申请至取件（分钟：P50 / P90）",
                 "Transport requests: request to pickup (minutes: P50 / P90)"),
    "asked": ("申请", "Requests"), "picked": ("已取件", "Picked up"),
}


def period_report(connection: Connection, period: Period, zone: str) -> PeriodReport:
    """The report of a period: the API's JSON, the PDF's content, the scheduled report's."""
    return PeriodReport(first_day=period.first.isoformat(), last_day=period.last.isoformat(),
                        timezone=zone, requests=service_level.compute_between(
                            connection, *period.bounds(zone)),
                        **summarise(*load(connection, period, zone)))


def site_names(connection: Connection) -> dict[str, tuple[str, str]]:
    """Site id → (Chinese name, English name), as `period_pdf` takes them."""
    site = Site.__table__
    return {row.id: (row.name_zh, row.name_en) for row in connection.execute(
        select(site.c.id, site.c.name_zh, site.c.name_en))}


def period_pdf(report: PeriodReport, site_names: dict[str, tuple[str, str]],
               language: str = "zh") -> bytes:
    """`site_names`: site id → (Chinese name, English name)."""
    font = cjk_font()
    chinese = bool(font) and language == "zh"
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_title(f"Turnaround {report.first_day} - {report.last_day}")
    pdf.set_creator("dronelog")
    if font:
        pdf.add_font("cjk", "", str(font[0]), collection_font_number=font[1])
    family = "cjk" if font else "helvetica"

    def text(key: str, **values) -> str:
        zh, en = _T[key]
        return (zh if chinese else en).format(**values)

    def site(site_id: str | None) -> str:
        zh, en = site_names.get(site_id or "", (site_id or "-", site_id or "-"))
        return zh if chinese else en.split(" (")[0]

    def pick(names: dict, value: str) -> str:
        zh, en = names.get(value, (value, value))
        return zh if chinese else en

    arrow = " → " if font else " -> "  # the core font has no arrow

    def pair(p50: float | None, p90: float | None) -> str:
        return " / ".join("-" if v is None else f"{v:.1f}" for v in (p50, p90))

    def table(widths: tuple, header: tuple, rows: list[tuple]) -> None:
        pdf.set_font(family, size=8)
        for width, value in zip(widths, header, strict=True):
            pdf.cell(width, 6, value, border=1)
        pdf.ln()
        if not rows:
            pdf.cell(sum(widths), 6, text("none"), border=1, new_x="LMARGIN", new_y="NEXT")
        for row in rows:
            for width, value in zip(widths, row, strict=True):
                pdf.cell(width, 6, value, border=1)
            pdf.ln()
        pdf.ln(4)

    pdf.add_page()
    pdf.set_font(family, size=15)
    pdf.cell(0, 9, text("title"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=10)
    pdf.cell(0, 7, text("period", first=report.first_day, last=report.last_day,
                        zone=report.timezone), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    legs = ("collected_to_loaded", "loaded_to_took_off", "flight", "landed_to_received")
    table((62, 16, 24, 16, 16, 24, 24, 24, 24, 24, 24),
          (text("route"), text("priority"), text("kind"), text("n"), text("ontime"),
           text("total"), *(text(leg) for leg in legs), text("excursions")),
          [(f"{site(g.origin_site_id)}{arrow}{site(g.destination_site_id)}",
            pick(_PRIORITY, g.priority), pick(_KIND, g.kind), str(g.specimens),
            "-" if g.on_time_pct is None else f"{g.on_time_pct:.1f}%",
            pair(g.p50_min, g.p90_min),
            *(pair(getattr(g, f"p50_{leg}_min"), getattr(g, f"p90_{leg}_min"))
              for leg in legs), str(g.excursions)) for g in report.groups])
    pdf.set_font(family, size=11)
    pdf.cell(0, 7, text("routes"), new_x="LMARGIN", new_y="NEXT")
    table((90, 30, 30), (text("route"), text("n"), text("excursions")),
          [(f"{site(r.origin_site_id)}{arrow}{site(r.destination_site_id)}", str(r.specimens),
            str(r.excursions)) for r in report.routes])
    pdf.set_font(family, size=11)
    pdf.cell(0, 7, text("rejections"), new_x="LMARGIN", new_y="NEXT")
    table((60, 90, 30), (text("reason"), text("site"), text("count")),
          [(r.reason, site(r.site_id), str(r.count)) for r in report.rejections])
    if report.discrepancies:
        pdf.set_font(family, size=11)
        pdf.cell(0, 7, text("discrepancies"), new_x="LMARGIN", new_y="NEXT")
        table((90, 60, 30), (text("site"), text("finding"), text("count")),
              [(site(d.site_id), d.finding, str(d.count)) for d in report.discrepancies])
    if report.requests:
        pdf.set_font(family, size=11)
        pdf.cell(0, 7, text("requests"), new_x="LMARGIN", new_y="NEXT")
        table((90, 24, 24, 24, 36),
              (text("route"), text("priority"), text("asked"), text("picked"), "P50 / P90"),
              [(f"{site(r.origin_site_id)}{arrow}{site(r.destination_site_id)}",
                pick(_PRIORITY, r.priority), str(r.requests), str(r.picked_up),
                pair(r.request_to_pickup_p50_min, r.request_to_pickup_p90_min))
               for r in report.requests])
    return bytes(pdf.output())
