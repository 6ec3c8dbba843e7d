import type { RunLogLine, RunProgress, RunStatus } from './wire.ts';

/** An event of a followed run log (`GET /v1/runs/:id/logs/stream`). */
export type RunLogEvent =
  | { type: 'log'; line: RunLogLine }
  | { type: 'progress'; progress: RunProgress }
  /** The run ended and every line was sent; the stream closes. */
  | { type: 'end'; status: RunStatus | 'deleted'; lastSeq: number };

/**
 * Reads Server-Sent Events from a response body: `event:` and `data:` lines, blank line ends an
 * event; comments (`:`) and `id:` lines are skipped (the seq is in the data).
 */
export async function* readRunLogEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<RunLogEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      if (line === '') {
        const parsed = toEvent(event, data.join('\n'));
        event = 'message';
        data = [];
        if (parsed) yield parsed;
      } else if (line.startsWith('event:')) {
        event = line.slice(6).trim();
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
}

function toEvent(event: string, data: string): RunLogEvent | undefined {
  if (data === '') return undefined;
  const value = JSON.parse(data) as never;
  if (event === 'log') return { type: 'log', line: value };
  if (event === 'progress') return { type: 'progress', progress: value };
  if (event === 'end') return { type: 'end', ...(value as { status: RunStatus; lastSeq: number }) };
  if (event === 'error')
    throw new Error(`log stream failed: ${(value as { message?: string }).message ?? data}`);
  return undefined;
}
