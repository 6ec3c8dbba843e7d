/**
 * Instants on the wire are RFC 3339 date-times with seconds and an offset (`Z` or `±hh:mm`):
 * `2030-01-01T09:00:00Z`, `2030-01-01T09:00:00.250+02:00`. `Date.parse` alone accepts far more and
 * shifts it silently: `2024-02-30` becomes March 1, `T24:00` the next day, and an instant without an
 * offset is read in the node's own zone. Every field is checked here before the instant is taken.
 */
const RFC_3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Epoch ms of a strict RFC 3339 instant, or null when it is not one (or names no real day). */
export function parseRfc3339(value: string): number | null {
  const match = RFC_3339.exec(value);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const sign = match[8];
  const offsetHours = Number(match[9] ?? 0);
  const offsetMinutes = Number(match[10] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return null;
  const fraction = match[7] ? Math.floor(Number(`0${match[7]}`) * 1000) : 0;
  const local = Date.UTC(year, month - 1, day, hour, minute, second, fraction);
  // Date.UTC reads years 0–99 as 1900–1999.
  const utc = year < 100 ? new Date(local).setUTCFullYear(year) : local;
  const offset = (offsetHours * 60 + offsetMinutes) * 60_000 * (sign === '-' ? -1 : 1);
  return utc - offset;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
