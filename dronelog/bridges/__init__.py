"""Bridges from real aircraft into dronelog's contract (docs/bridges.md).

- `mavlink`: MAVLink over UDP (PX4, ArduPilot, a MAVLink router) -> contract messages.
- `dji`: DJI Cloud API over MQTT (a Dock, or a remote controller with DJI Pilot 2) -> contract
  messages.
- `flights`: what both add to an aircraft's own view: dronelog's flight ids (from the
  `planned` events on dronelog's broker), the sites of take-off and landing, `seq`, event ids.
- `mqtt`: the MQTT edges: a publisher per drone (QoS 1, status retained, last will) and a
  persistent-session subscriber.
- `mapping`: which aircraft is which drone, and where the sites are.
- `cli`: `dronelog bridge mavlink|dji`.

Each bridge is a pure translator (messages and the time in, contract messages out; tested
without sockets) and a thin I/O loop around it. A bridge publishes as a drone would; the
ingester validates and stores. A bridge never touches the database.
"""
