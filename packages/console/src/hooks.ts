import { useCallback, useEffect, useRef, useState } from 'react';
import { api, noticeError } from './api.ts';

/** How often live pages ask the node again. */
export const POLL_MS = 1500;

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  reload: () => void;
}

/**
 * Loads now and again every `intervalMs` after each answer (never two requests in flight), while
 * the tab is visible; `deps` restart it. `intervalMs` 0 loads once.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  intervalMs = POLL_MS,
): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const step = async () => {
      try {
        const value = await loadRef.current();
        if (!stopped) {
          setData(value);
          setError(undefined);
        }
      } catch (e) {
        noticeError(e);
        if (!stopped) setError(e);
      }
      if (!stopped && intervalMs > 0) timer = setTimeout(next, intervalMs);
    };
    // A hidden tab stops asking; it asks again as soon as it is shown.
    const next = () => {
      if (document.hidden) document.addEventListener('visibilitychange', onVisible);
      else void step();
    };
    const onVisible = () => {
      if (document.hidden) return;
      document.removeEventListener('visibilitychange', onVisible);
      void step();
    };
    void step();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [...deps, tick, intervalMs]);

  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, reload };
}

/** `value`, but only after it stopped changing for `ms` (validation requests while typing). */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** Worker ids to names, for tables that show which worker ran something (refreshed every 10 s). */
export function useWorkerNames(): Map<string, string> {
  const workers = usePoll(() => api.listWorkers({ all: true }), [], 10_000);
  return new Map((workers.data?.items ?? []).map((w) => [w.id, w.name]));
}
