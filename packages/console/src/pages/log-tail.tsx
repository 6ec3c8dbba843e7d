import { useEffect, useRef, useState } from 'react';
import { currentNamespace } from '../api.ts';

/** One log line as the run-logs stream sends it (`event: log`). */
interface LogLine {
  seq: number;
  attempt: number;
  time: string;
  level: string;
  message: string;
}

/** The last progress of an attempt (`event: progress`). */
interface Progress {
  attempt: number;
  value: number;
  message: string | null;
}

/**
 * LIVE LOG TAIL — run logs come from the run-logs work: `GET /v1/runs/:id/logs/stream`, server-sent
 * events `log` (one line, JSON), `progress` (JSON) and `end` (the run ended and every line was
 * sent). Nodes without that endpoint answer 404 before the stream opens: the page then says that
 * logs are not available. The stream closes when the page is left; a dropped stream resumes after
 * the last line it got (EventSource sends Last-Event-ID).
 */
export function LogTail({ runId }: { runId: number }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [state, setState] = useState<'connecting' | 'live' | 'ended' | 'unavailable'>('connecting');
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    setLines([]);
    setProgress(null);
    setState('connecting');
    // EventSource sends no headers of ours: the namespace goes in the query (docs/tenancy.md).
    const source = new EventSource(
      `/v1/runs/${runId}/logs/stream?namespace=${encodeURIComponent(currentNamespace())}`,
    );
    let opened = false;
    source.onopen = () => {
      opened = true;
      setState('live');
    };
    source.addEventListener('log', (event) => {
      const line = JSON.parse((event as MessageEvent<string>).data) as LogLine;
      setLines((old) => [...old.slice(-1999), line]);
    });
    source.addEventListener('progress', (event) => {
      setProgress(JSON.parse((event as MessageEvent<string>).data) as Progress);
    });
    source.addEventListener('end', () => {
      source.close();
      setState('ended');
    });
    source.onerror = () => {
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
    <>
      {progress && (
        <p>
          <progress max={1} value={progress.value} /> {Math.round(progress.value * 100)}%
          {progress.message ? ` — ${progress.message}` : ''}
        </p>
      )}
      <pre className="log" ref={box} role="log" aria-label="Run log">
        {lines.length === 0
          ? state === 'connecting'
            ? 'Connecting…'
            : state === 'ended'
              ? 'No log lines.'
              : 'Waiting for log lines…'
          : lines
              .map(
                (l) =>
                  `${l.time.slice(11, 23)} #${l.attempt} ${l.level.toUpperCase().padEnd(5)} ${l.message}`,
              )
              .join('\n')}
      </pre>
    </>
  );
}
