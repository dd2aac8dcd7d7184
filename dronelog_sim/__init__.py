"""The simulator: the drone network without hardware, speaking only the public contract.

- `scenario`: scenario files: the product's network description (`dronelog.network`: sites,
  routes) extended with drones, demand, shifts and weather;
- `flight_model`: climb, cruise with wind, descent, battery, payload temperature;
- `network`: the deterministic simulation of specimens and flights, with faults;
- `faults`: which faults and how often; how a message is broken on purpose;
- `runner` and `publisher`: pacing onto the broker, ground truth, recording and replay;
- `load`: N drones at F Hz for benchmarks.
"""
