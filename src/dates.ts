// Dates every layer can hold: PostgreSQL timestamptz, JavaScript Date and Temporal timestamps
// (search attributes, timers) all accept UTC years 1..9999, and nothing outside that.

export const STORABLE_DATE_RANGE = 'between the years 0001 and 9999 (UTC)';

export function isStorableDate(date: Date): boolean {
  if (!Number.isFinite(date.getTime())) return false;
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999;
}
