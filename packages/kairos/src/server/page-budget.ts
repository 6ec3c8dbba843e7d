/**
 * The most a page of a list may weigh, in bytes of JSON. A page of 500 jobs or runs with 64 KiB of
 * params each would be 32 MB, built in memory and sent in one answer; a page ends early at this
 * bound instead, and its cursor goes on from the last item it holds.
 */
export const PAGE_BYTES_LIMIT = 1024 * 1024;

/**
 * The views of `rows` that fit the page: all of them, or the first ones within `limitBytes` (at
 * least one). `cut` says the page ended early at the bound.
 */
export function fitPage<R, V>(
  rows: readonly R[],
  view: (row: R) => V,
  limitBytes = PAGE_BYTES_LIMIT,
): { items: V[]; rows: R[]; cut: boolean } {
  const items: V[] = [];
  const kept: R[] = [];
  let bytes = 0;
  for (const row of rows) {
    const item = view(row);
    bytes += Buffer.byteLength(JSON.stringify(item)) + 1;
    if (bytes > limitBytes && items.length > 0) return { items, rows: kept, cut: true };
    items.push(item);
    kept.push(row);
  }
  return { items, rows: kept, cut: false };
}
