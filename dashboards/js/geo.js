// Distances and progress along a route, on a local flat approximation (good to a few metres
// over a county: routes here are under 20 km).

const EARTH_M = 6371008.8;
const RAD = Math.PI / 180;

export function distance(a, b) {
  const dLat = (b[0] - a[0]) * RAD;
  const dLon = (b[1] - a[1]) * RAD;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * RAD) * Math.cos(b[0] * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

export function bearing(a, b) {
  const y = Math.sin((b[1] - a[1]) * RAD) * Math.cos(b[0] * RAD);
  const x = Math.cos(a[0] * RAD) * Math.sin(b[0] * RAD) - Math.sin(a[0] * RAD) * Math.cos(b[0] * RAD) * Math.cos((b[1] - a[1]) * RAD);
  return (Math.atan2(y, x) / RAD + 360) % 360;
}

/** How far along `route` ([[lat, lon], ...]) the point `p` is: {along_m, total_m, fraction,
 * off_m} (projected onto the nearest leg). */
export function progressAlong(route, p) {
  let total = 0;
  let best = {along: 0, off: Infinity};
  const cosLat = Math.cos(p[0] * RAD);
  const xy = (q) => [(q[1] - p[1]) * RAD * EARTH_M * cosLat, (q[0] - p[0]) * RAD * EARTH_M];
  for (let i = 0; i + 1 < route.length; i++) {
    const a = xy(route[i]);
    const b = xy(route[i + 1]);
    const leg = Math.hypot(b[0] - a[0], b[1] - a[1]);
    let u = leg ? -(a[0] * (b[0] - a[0]) + a[1] * (b[1] - a[1])) / (leg * leg) : 0;
    u = Math.max(0, Math.min(1, u));
    const off = Math.hypot(a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]));
    if (off < best.off) best = {along: total + u * leg, off};
    total += leg;
  }
  return {along_m: best.along, total_m: total, fraction: total ? best.along / total : 0, off_m: best.off};
}
