// Where a site's name stands on the fleet map, decided apart from the map (the fleet view
// measures, this decides): tests/test_site_labels.py runs it through node.

// the sides, in the order they are tried, as Leaflet tooltip options
export const SITE_LABEL_SIDES = {
  right: {direction: 'right', offset: [10, 0]},
  left: {direction: 'left', offset: [-10, 0]},
  above: {direction: 'top', offset: [0, -8]},
  below: {direction: 'bottom', offset: [0, 8]},
};
const ORDER = Object.keys(SITE_LABEL_SIDES);

/** The side a site's name takes. `current` is the side it stands on; `measure(side)` puts it
 * on `side` and says what it covers there: the drones under it, plus 1000 when it is cut by
 * the map's edge or lies on another site's name or on the legend (0: clear).
 *
 * Right of its marker when the right is clear. Else it stays on the side it is on while that
 * side is clear, so it does not jump while a drone flies past; else the first clear side of
 * left, above and below; else the side with the fewest drones under it where it is whole
 * (the first of those in that order). The usual case, right and clear, measures once. */
export function siteLabelSide(current, measure) {
  const costs = {[current]: measure(current)};
  if (current === 'right' && costs.right === 0) return 'right';
  if (current !== 'right' && (costs.right = measure('right')) === 0) return 'right';
  if (costs[current] === 0) return current;
  for (const side of ORDER) {
    if (!(side in costs) && (costs[side] = measure(side)) === 0) return side;
  }
  return ORDER.reduce((a, b) => (costs[b] < costs[a] ? b : a));
}
