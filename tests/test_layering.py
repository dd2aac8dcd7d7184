"""The product never imports its simulator: no module of `dronelog/` imports `dronelog_sim`
at module level, and only the demo and simulate commands import it at all (inside the
command, when it runs). Read from the source with `ast`, so a lazy import hidden in a
function elsewhere is caught as well."""

import ast
from pathlib import Path

import pytest

PRODUCT = Path(__file__).resolve().parents[1] / "dronelog"
# The commands that run the simulator; they import it inside their functions.
ALLOWED = {"cli/demo.py", "cli/simulate.py"}


def _simulator_imports(tree: ast.Module) -> list[tuple[int, bool]]:
    """(line, at module level) of every import of dronelog_sim."""
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(name == "dronelog_sim" or name.startswith("dronelog_sim.") for name in names):
            found.append((node.lineno, id(node) in top_level))
    return found


def test_the_product_imports_the_simulator_only_lazily_in_demo_and_simulate():
    offenders = []
    lazily = []
    for path in sorted(PRODUCT.rglob("*.py")):
        name = path.relative_to(PRODUCT).as_posix()
        for line, top in _simulator_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if top or name not in ALLOWED:
                offenders.append(f"dronelog/{name}:{line}")
            else:
                lazily.append(name)
    assert offenders == []
    assert set(lazily) == ALLOWED  # the check sees the imports it allows


def test_the_simulator_builds_on_the_products_network_description():
    from dronelog.network import Network, Route, Site
    from dronelog_sim.scenario import Route as ScenarioRoute
    from dronelog_sim.scenario import Scenario
    from dronelog_sim.scenario import Site as ScenarioSite

    assert issubclass(Scenario, Network)
    assert (ScenarioSite, ScenarioRoute) == (Site, Route)


def test_the_product_reads_a_scenario_file_as_a_network_and_names_a_bad_line(tmp_path):
    from dronelog import resources
    from dronelog.network import Network, NetworkFileError, load_network

    network = load_network(resources.scenario("pingdu"))
    assert type(network) is Network  # the simulation's tables (drones, demand...) left out
    assert {site.id for site in network.sites} >= {"pdrmyy", "cjzxwsy"}
    broken = tmp_path / "net.toml"
    broken.write_text('[scenario]\nname = "x"\ntitle_zh = "x"\ntitle_en = "x"\n'
                      '[[sites]]\nid = "a"\nname_zh = "a"\nname_en = "a"\nkind = "lab_hospital"\n'
                      'lat = 95\nlon = 120\n', encoding="utf-8")
    with pytest.raises(NetworkFileError, match=r"net.toml: line 10: sites.0.lat"):
        load_network(broken)
