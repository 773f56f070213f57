// Unit id → display name ("p-4821" → "Maya Chen").

import { getAll } from './api.js';

// Read once per page load; a map that is empty when the units cannot be read.
let unitNames = null;
export function loadNames() {
  if (!unitNames) {
    unitNames = getAll('v1/units')
      .then(({ items }) => new Map(items.map((u) => [u.id, u.name])))
      .catch(() => new Map());
  }
  return unitNames;
}
