import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from './instant.ts';

describe('parseRfc3339', () => {
  it('reads instants with seconds and an offset, fractions to the millisecond', () => {
    expect(parseRfc3339('2030-01-01T09:00:00Z')).toBe(Date.UTC(2030, 0, 1, 9));
    expect(parseRfc3339('2030-01-01t09:00:00z')).toBe(Date.UTC(2030, 0, 1, 9));
    expect(parseRfc3339('2030-01-01T09:00:00.1239+02:30')).toBe(Date.UTC(2030, 0, 1, 6, 30, 0, 123));
    expect(parseRfc3339('2030-01-01T00:00:00-05:00')).toBe(Date.UTC(2030, 0, 1, 5));
    expect(parseRfc3339('2028-02-29T00:00:00Z')).toBe(Date.UTC(2028, 1, 29));
    expect(parseRfc3339('2000-02-29T00:00:00Z')).toBe(Date.UTC(2000, 1, 29));
    expect(parseRfc3339('0050-06-01T00:00:00Z')).toBe(new Date('0050-06-01T00:00:00Z').getTime());
  });

  it.each([
    '2024-02-30T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2030-06-31T00:00:00Z',
    '2030-00-10T00:00:00Z',
    '2030-01-00T00:00:00Z',
    '2030-01-01T24:00:00Z',
    '2030-01-01T23:60:00Z',
    '2030-01-01T23:59:60Z',
    '2030-01-01T10:00:00',
    '2030-01-01T10:00Z',
    '2030-01-01T10:00:00+24:00',
    '2030-01-01T10:00:00+01:60',
    '2030-01-01T10:00:00+0100',
    '2030-01-01T10:00:00.Z',
    '2030-01-01 10:00:00Z',
    ' 2030-01-01T10:00:00Z',
    '2030-01-01T10:00:00Z\n',
    '2030-01-01T10:00:00\u0000Z',
    '+002030-01-01T10:00:00Z',
    '2030-01-01',
    '',
  ])('refuses %j', (value) => {
    expect(parseRfc3339(value)).toBeNull();
  });
});
