"""Where a site's name stands on the fleet map (dashboards/js/site_labels.js), through node:
each rule at its edge, with what each side covers given (0: clear; drones under it; +1000
when cut or on another name). The browser tests (test_dashboards_report_fleet.py) check the
map measures it right; this checks what is decided from the measures, the calls included."""

import pytest

from tests.support import run_dashboard_module

# (where it stands, what each side covers, the side chosen, the sides measured in order)
CASES = [
    # the usual case: right and clear, measured once and left alone
    ("right", {"right": 0}, "right", ["right"]),
    # a drone under it on the right: the first clear side, left
    ("right", {"right": 1, "left": 0}, "left", ["right", "left"]),
    # left covered too: above
    ("right", {"right": 1, "left": 2, "above": 0}, "above", ["right", "left", "above"]),
    # back on the right as soon as the right is clear
    ("left", {"left": 0, "right": 0}, "right", ["left", "right"]),
    # above and clear while the right is not: it stays, though left is clear now too
    ("above", {"above": 0, "right": 1, "left": 0}, "above", ["above", "right"]),
    # above no longer clear: the first clear side in order, not the one it was on
    ("above", {"above": 1, "right": 1, "left": 0}, "left", ["above", "right", "left"]),
    # nowhere clear: the fewest drones under it where it is whole
    ("right", {"right": 1000, "left": 1003, "above": 2, "below": 1}, "below",
     ["right", "left", "above", "below"]),
    # a tie: the first of the tied sides in order (right), not the one it stood on
    ("below", {"below": 1, "right": 1, "left": 1000, "above": 1}, "right",
     ["below", "right", "left", "above"]),
    # hidden everywhere: right, its usual side
    ("above", {"above": 1000, "right": 1000, "left": 1000, "below": 1000}, "right",
     ["above", "right", "left", "below"]),
]


def _decide(cases) -> list:
    return run_dashboard_module(
        "site_labels.js",
        "process.stdout.write(JSON.stringify(input.map(([current, costs]) => {"
        "  const measured = [];"
        "  const side = m.siteLabelSide(current, (s) => { measured.push(s); return costs[s]; });"
        "  return [side, measured];"
        "})))",
        [[current, costs] for current, costs, _, _ in cases], "the fleet map's site labels")


def test_each_rule_at_its_edge_and_what_it_measures():
    assert _decide(CASES) == [[side, measured] for _, _, side, measured in CASES]


@pytest.mark.parametrize("side", ["right", "left", "above", "below"])
def test_the_sides_are_leaflet_tooltip_directions(side):
    options = run_dashboard_module("site_labels.js",
                                   "process.stdout.write(JSON.stringify(m.SITE_LABEL_SIDES))",
                                   None, "the fleet map's site labels")[side]
    assert options["direction"] == {"above": "top", "below": "bottom"}.get(side, side)
