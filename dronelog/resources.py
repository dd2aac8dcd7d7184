"""The files a user runs with, shipped inside the package: the dashboards, the scenario
(network) files, the example policy files and the JSON Schemas of the contract.

They live at the top of the repository (`dashboards/`, `scenarios/`, `config/`,
`docs/schemas/`); `dronelog/shipped/` holds symlinks to them, which setuptools follows into
the wheel (docs/packaging.md). So the same path works in a checkout (through the links) and in
an installed wheel (real files), found with importlib.resources.
"""

from importlib.resources import files
from pathlib import Path


def shipped(name: str) -> Path:
    """The shipped folder `name` (dashboards, scenarios, config, schemas)."""
    return Path(str(files("dronelog") / "shipped" / name))


def dashboards() -> Path:
    return shipped("dashboards")


def scenario(name: str) -> Path:
    """A shipped scenario file by name: `pingdu` or `county`."""
    return shipped("scenarios") / f"{name}.toml"
