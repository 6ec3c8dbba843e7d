/**
 * Processes this worker started for attempts (isolated handlers, shell process groups). When the
 * worker's process exits, whatever is still running is killed: a busy child never hears that its
 * parent left, and a detached process group would outlive the worker otherwise.
 */
const live = new Set<() => void>();
let installed = false;

/** Registers a kill for one child; call the answer once the child is gone. */
export function trackChild(kill: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const killOne of live) {
        try {
          killOne();
        } catch {
          // Gone already.
        }
      }
    });
  }
  live.add(kill);
  return () => live.delete(kill);
}
