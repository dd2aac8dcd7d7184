"""`python -m dronelog.bridges mavlink|dji ...`: the bridges without the `dronelog` command."""

from dronelog.bridges.cli import bridge

bridge(prog_name="python -m dronelog.bridges")
