/**
 * The jitter of one fire: a delay in `[0, maxMs]` derived from the job id and the fire time, so
 * that every node, every retry of the fire transaction and every preview computes the same delay
 * (a random draw would differ between a preview and the run, and between two nodes).
 */
export function jitterOf(jobKey: number | string, fireTime: number, maxMs: number): number {
  if (maxMs <= 0) return 0;
  return Math.floor(unitHash(`${jobKey}@${fireTime}`) * (maxMs + 1));
}

/** FNV-1a over the text, then a murmur3 finaliser to spread the bits; a number in [0, 1). */
function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}
