// RFC 3339 §5.6 date-time, checked strictly: real calendar dates (Appendix C leap years), hours
// 00-23, minutes 00-59, a numeric offset of at most 23:59 or Z, and second 60 only where a leap
// second can be (23:59:60 UTC on a month's last day, §5.7). `T` and `Z` may be lower case (§5.6 NOTE).

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const NO_OFFSET = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

export interface UtcTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  /** 0-60 (60: a leap second). */
  readonly second: number;
  /** The fraction's digits as written, '' when none. */
  readonly fraction: string;
}

/** Why `s` is not an RFC 3339 date-time, or null when it is one. */
export function rfc3339Problem(s: string): string | null {
  const r = read(s);
  return typeof r === 'string' ? r : null;
}

/** `s` converted to UTC; throws a RangeError if `s` is not an RFC 3339 date-time. */
export function toUtc(s: string): UtcTime {
  const r = read(s);
  if (typeof r === 'string') throw new RangeError(`${JSON.stringify(s)}: ${r}`);
  return r;
}

/**
 * A string that sorts like the instant `s` names (to the nanosecond), whatever offset it was
 * written with: the order of `issued` values is the order of their keys.
 */
export function issuedOrderKey(s: string): string {
  const t = toUtc(s);
  const minutes = daysFromCivil(t.year, t.month, t.day) * 1440 + t.hour * 60 + t.minute;
  // Shift so that every 4-digit year, after its offset, gives a positive, fixed-width number.
  const shifted = minutes - daysFromCivil(-1, 1, 1) * 1440;
  return `${String(shifted).padStart(12, '0')}${String(t.second).padStart(2, '0')}${t.fraction.slice(0, 9).padEnd(9, '0')}`;
}

function read(s: string): UtcTime | string {
  const m = DATE_TIME.exec(s);
  if (m === null) {
    return NO_OFFSET.test(s)
      ? 'must be an RFC 3339 date-time with a time zone (Z or +hh:mm)'
      : 'must be an RFC 3339 date-time (e.g. 2026-11-21T10:00:00Z)';
  }
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const fraction = m[7] ?? '';
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth(year!, month!)) return 'no such date';
  if (hour! > 23 || minute! > 59 || second! > 60) return 'no such time of day';
  let offsetMin = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return 'time zone offset out of range';
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const utcMinutes = daysFromCivil(year!, month!, day!) * 1440 + hour! * 60 + minute! - offsetMin;
  const days = Math.floor(utcMinutes / 1440);
  const minuteOfDay = utcMinutes - days * 1440;
  const [uy, um, ud] = civilFromDays(days);
  if (second === 60) {
    const lastOfMonth = civilFromDays(days + 1)[2] === 1;
    if (minuteOfDay !== 1439 || !lastOfMonth) return 'second 60 is only valid at 23:59:60 UTC on the last day of a month';
  }
  return { year: uy, month: um, day: ud, hour: Math.floor(minuteOfDay / 60), minute: minuteOfDay % 60, second: second!, fraction };
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeapYear(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's civil algorithms).
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z0: number): [number, number, number] {
  const z = z0 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}
