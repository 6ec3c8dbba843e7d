import { useEffect, useRef, useState } from 'react';

/**
 * LIVE LOG TAIL — the place for run logs (`GET /v1/runs/:id/logs`, a server-sent event stream).
 * The endpoint comes with the run-logs work; until a node answers it, this shows that logs are not
 * available. Each event's data is shown as one line; the stream is closed when the page is left.
 */
export function LogTail({ runId }: { runId: number }) {
  const [lines, setLines] = useState<string[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'unavailable'>('connecting');
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    setLines([]);
    setState('connecting');
    const source = new EventSource(`/v1/runs/${runId}/logs`);
    let opened = false;
    source.onopen = () => {
      opened = true;
      setState('live');
    };
    source.onmessage = (event: MessageEvent<string>) => setLines((old) => [...old.slice(-999), event.data]);
    source.onerror = () => {
      // No stream at all (404 on nodes without run logs): stop retrying. A dropped stream retries.
      if (!opened) {
        source.close();
        setState('unavailable');
      }
    };
    return () => source.close();
  }, [runId]);

  useEffect(() => {
    if (lines.length > 0) box.current?.scrollTo({ top: box.current.scrollHeight });
  }, [lines]);

  if (state === 'unavailable')
    return <p className="muted">Logs are not available for this run on this node.</p>;
  return (
    <pre className="log" ref={box} role="log" aria-label="Run log">
      {lines.length === 0 ? (state === 'live' ? 'Waiting for log lines…' : 'Connecting…') : lines.join('\n')}
    </pre>
  );
}
