// Values as text: okrd's times, dates, shares and changed fields.

import { formatNumber } from './chart.js';

// okrd writes microseconds ("…T18:00:00.000000Z"); Date.parse wants millis.
export function parseTime(text) {
  if (!text) return NaN;
  return Date.parse(String(text).replace(/\.(\d{3})\d*Z$/, '.$1Z'));
}

export function formatDateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  return `${new Date(ms).toLocaleString('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
  })} UTC`;
}

export function formatDate(ms) {
  if (!Number.isFinite(ms)) return '–';
  return new Date(ms).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

// A share (0.523) as a whole percentage ("52%").
export const percent = (share) => `${Math.round(share * 100)}%`;

// A field's value as a diff reports it (before or after).
export function show(value) {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'number') return formatNumber(value);
  if (Array.isArray(value)) return value.join(', ') || '–';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
