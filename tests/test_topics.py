import pytest

from dronelog.contract.topics import Channel, TopicAddress, TopicLayout


@pytest.mark.parametrize("topic, expected", [
    ("dronelog/v1/drones/uav-1/telemetry", TopicAddress(Channel.TELEMETRY, "uav-1")),
    ("dronelog/v1/drones/uav-1/flight", TopicAddress(Channel.FLIGHT, "uav-1")),
    ("dronelog/v1/drones/uav-1/custody", TopicAddress(Channel.DRONE_CUSTODY, "uav-1")),
    ("dronelog/v1/drones/uav-1/status", TopicAddress(Channel.STATUS, "uav-1")),
    ("dronelog/v1/sites/lab/custody", TopicAddress(Channel.SITE_CUSTODY, "lab")),
    ("dronelog/v1/sites/lab/telemetry", None),
    ("dronelog/v1/drones/uav-1/telemetry/extra", None),
    ("dronelog/v1/drones//telemetry", None),
    ("dronelog/v2/drones/uav-1/telemetry", None),
    ("other/drones/uav-1/telemetry", None),
])
def test_parse(topic, expected):
    assert TopicLayout().parse(topic) == expected


def test_custom_prefix_round_trips():
    layout = TopicLayout("county/pingdu/dl")
    assert layout.parse(layout.site_custody("lab")) == TopicAddress(Channel.SITE_CUSTODY, "lab")
    assert layout.parse(layout.status("d")) == TopicAddress(Channel.STATUS, "d")
    assert layout.subscriptions() == [("county/pingdu/dl/drones/#", 1),
                                      ("county/pingdu/dl/sites/#", 1)]


@pytest.mark.parametrize("prefix", ["", "/", "a/+/b", "a/#"])
def test_invalid_prefix_is_refused(prefix):
    with pytest.raises(ValueError):
        TopicLayout(prefix)
