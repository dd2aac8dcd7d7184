// What the fleet view says about a drone, decided from what is known and never more: a drone
// with no report is "never seen", not "on the ground"; a report grows old by the time it was
// RECEIVED (a device clock can be wrong), against the thresholds of config.json, documented
// in docs/dashboards.md ("The fleet: what each state means").

export const THRESHOLDS = {
  stale_link_s: 5, // in flight: a report older than this is late (telemetry is ~1 Hz)
  lost_link_s: 30, // in flight: the link is lost (the server's DRONELOG_LOST_LINK_S)
  ground_stale_s: 300, // on the ground, presence unknown: older than this is stale
  ground_offline_s: 1800, // on the ground, presence unknown: older than this is offline
};

/** The state of a drone: airborne, diverted, stale, lost (in flight); ground, stale, offline
 * (on the ground); never (no report yet). `receivedAgeS` null: nothing received. `online`
 * is the newest presence report (true, false, or null when none came). */
export function droneState({flying, diverted = false, online = null, receivedAgeS = null}, thresholds = THRESHOLDS) {
  const th = {...THRESHOLDS, ...thresholds};
  if (receivedAgeS === null || receivedAgeS === undefined) return online === false ? 'offline' : 'never';
  if (flying) {
    if (receivedAgeS > th.lost_link_s) return 'lost';
    if (receivedAgeS > th.stale_link_s) return 'stale';
    return diverted ? 'diverted' : 'airborne';
  }
  if (online === false) return 'offline';
  if (online === true) return 'ground'; // connected (the broker would have sent its will)
  if (receivedAgeS > th.ground_offline_s) return 'offline';
  if (receivedAgeS > th.ground_stale_s) return 'stale';
  return 'ground';
}

/** The box temperature against the bands of the classes on board: {out, band} where band is
 * the narrowest range every class allows ([low, high], or null with nothing on board). */
export function payloadCheck(tempC, bands) {
  if (!bands?.length) return {out: false, band: null};
  const band = [Math.max(...bands.map((b) => b.low_c)), Math.min(...bands.map((b) => b.high_c))];
  const known = tempC !== null && tempC !== undefined;
  const out = known && bands.some((b) => tempC < b.low_c || tempC > b.high_c);
  return {out, band};
}
