/**
 * Resource-based scheduling: what a run requests (cpu, memory, countable custom resources) and what
 * a worker has. Pure; no I/O.
 *
 * Amounts are whole numbers in one unit per resource, so sums and comparisons are exact: `cpu` in
 * millicores (1.5 cores = 1500), `memory` in bytes, a custom resource (`gpu`, `licence`) in units.
 * A resource a run does not name it does not request; a resource a worker does not advertise it
 * has none of.
 */
import type { ResourceSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';

/** Resource name → amount (cpu in millicores, memory in bytes, others in units). */
export type Resources = Readonly<Record<string, number>>;

/** A custom resource name: lower-case letters, digits, `_` and `-`, starting with a letter. */
export const RESOURCE_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
/** At most this many resources in one request or one worker's capacity. */
export const MAX_RESOURCES = 16;
/** The most cores one request or one worker may name. */
export const MAX_CPU_CORES = 4096;
/** The most memory one request or one worker may name: 1 PiB. */
export const MAX_MEMORY_BYTES = 2 ** 50;
/** The most units of a custom resource. */
export const MAX_CUSTOM_UNITS = 1_000_000;

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};
const MEMORY_PATTERN = /^(\d+(?:\.\d+)?)\s*(K|M|G|T|Ki|Mi|Gi|Ti)?$/;

/**
 * Validates a run's request or a worker's capacity from outside (`field` names it in errors:
 * `resources`, `steps[2].resources`); throws INVALID_RESOURCES with the field. Absent or empty:
 * null (a request of nothing, a worker that advertises nothing).
 */
export function compileResources(
  spec: ResourceSpec | null | undefined,
  field: string,
  { zero = false }: { zero?: boolean } = {},
): Resources | null {
  if (spec === undefined || spec === null) return null;
  if (typeof spec !== 'object' || Array.isArray(spec)) throw invalid(field, 'an object of resource amounts');
  const entries = Object.entries(spec);
  if (entries.length > MAX_RESOURCES) throw invalid(field, `at most ${MAX_RESOURCES} resources`);
  const out: Record<string, number> = {};
  const min = zero ? 0 : 1;
  for (const [name, value] of entries) {
    const at = `${field}.${name}`;
    if (!RESOURCE_NAME_PATTERN.test(name)) {
      throw invalid(at, `a resource name matching ${RESOURCE_NAME_PATTERN} (cpu, memory or a custom name)`);
    }
    let amount: number;
    if (name === 'cpu') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_CPU_CORES) {
        throw invalid(at, `a number of cores from 0.001 to ${MAX_CPU_CORES} (fractions allowed)`);
      }
      amount = Math.round(value * 1000);
    } else if (name === 'memory') {
      amount = parseMemory(value, at);
    } else {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_CUSTOM_UNITS) {
        throw invalid(at, `a whole number of units from 1 to ${MAX_CUSTOM_UNITS}`);
      }
      amount = value;
    }
    if (amount < min) throw invalid(at, zero ? 'an amount of 0 or more' : 'an amount above 0');
    if (amount > 0 || zero) out[name] = amount;
  }
  return Object.keys(out).length === 0 && !zero ? null : Object.freeze(out);
}

/** `'512Mi'`, `'2Gi'`, `'1.5G'` or a number of bytes → bytes. */
export function parseMemory(value: unknown, field: string): number {
  let bytes: number;
  if (typeof value === 'number') {
    bytes = value;
  } else if (typeof value === 'string') {
    const match = MEMORY_PATTERN.exec(value.trim());
    if (!match) throw invalid(field, "bytes, or a size like '512Mi', '2Gi' or '1.5G'");
    bytes = Math.round(Number(match[1]) * MEMORY_UNITS[match[2] ?? '']!);
  } else {
    throw invalid(field, "bytes, or a size like '512Mi', '2Gi' or '1.5G'");
  }
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_MEMORY_BYTES) {
    throw invalid(field, `a whole number of bytes up to ${MAX_MEMORY_BYTES} (1 PiB)`);
  }
  return bytes;
}

/** The spec form of stored amounts: cpu back in cores, memory and custom resources as numbers. */
export function resourceSpecOf(resources: Resources): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, amount] of Object.entries(resources)) out[name] = name === 'cpu' ? amount / 1000 : amount;
  return out;
}

/** Amounts as people read them: `cpu 1.5, memory 512 MiB, gpu 1`. */
export function describeResources(resources: Resources): string {
  return Object.entries(resources)
    .map(([name, amount]) => `${name} ${formatAmount(name, amount)}`)
    .join(', ');
}

export function formatAmount(name: string, amount: number): string {
  if (name === 'cpu') return `${amount / 1000}`;
  if (name !== 'memory') return `${amount}`;
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (amount >= size) return `${Math.round((amount / size) * 100) / 100} ${unit}`;
  }
  return `${amount} B`;
}

/**
 * The amount of `name` in `resources` (absent: 0). Reads own properties only: a custom resource may
 * be named like a member of every object (`constructor`, `toString`), which a plain `resources[name]`
 * would find on the prototype.
 */
export function amountOf(resources: Resources | null | undefined, name: string): number {
  return resources && Object.hasOwn(resources, name) ? (resources[name] ?? 0) : 0;
}

/** Whether `request` fits in `available` on every resource it names (a resource not listed: none). */
export function fits(request: Resources, available: Resources): boolean {
  for (const [name, amount] of Object.entries(request)) if (amountOf(available, name) < amount) return false;
  return true;
}

/** What `request` lacks in `available`, per resource (empty: it fits). */
export function shortfall(request: Resources, available: Resources): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, amount] of Object.entries(request)) {
    const have = amountOf(available, name);
    if (have < amount) out[name] = amount - have;
  }
  return out;
}

/** `a + b`, or `a - b` with `sign` -1, on every resource of either. */
export function addResources(a: Resources, b: Resources, sign = 1): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [name, amount] of Object.entries(b)) out[name] = amountOf(out, name) + sign * amount;
  return out;
}

/**
 * How far a worker is from fitting `request`: the sum over the resources it lacks of the part of
 * its capacity lacking (0: it fits now). Used to pick which worker reserves for a starved run.
 */
export function distance(request: Resources, free: Resources, capacity: Resources): number {
  let sum = 0;
  for (const [name, missing] of Object.entries(shortfall(request, free))) {
    sum += missing / Math.max(1, amountOf(capacity, name));
  }
  return sum;
}

/** The stored form (JSON) of a request or capacity; null or `{}` → null. */
export function resourcesFromColumn(text: string | null | undefined): Resources | null {
  if (text === null || text === undefined || text === '') return null;
  const value = (typeof text === 'string' ? JSON.parse(text) : text) as Record<string, number> | null;
  if (value === null || Object.keys(value).length === 0) return null;
  return value;
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('INVALID_RESOURCES', `${field}: expected ${expected}`, { field });
}
