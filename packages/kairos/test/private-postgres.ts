import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

/**
 * A PostgreSQL server of the test's own, in a temporary folder on a free port, so that a test can
 * stop and restart it without disturbing the machine's server that other tests use.
 * The server runs as the `postgres` system user (PostgreSQL refuses to run as root).
 */
export interface PrivatePostgres {
  url: string;
  stop(): void;
  start(): void;
  /** `stop` without blocking the event loop (a harness that keeps serving while the server is down). */
  stopAsync(): Promise<void>;
  startAsync(): Promise<void>;
  restart(): void;
  remove(): void;
}

/**
 * `listen`: addresses to listen on besides 127.0.0.1 (a bridge of the chaos suite's network
 * namespaces), trusted for every client of their /24.
 */
export async function startPrivatePostgres(options: { listen?: string[] } = {}): Promise<PrivatePostgres> {
  const bin = findBin();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kairos-pg-'));
  const data = join(dir, 'data');
  const asPostgres = (command: string, args: string[]) => {
    const [cmd, argv] =
      userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
    execFileSync(cmd as string, argv as string[], { stdio: 'pipe' });
  };
  if (userInfo().uid === 0) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  asPostgres(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const listen = ['127.0.0.1', ...(options.listen ?? [])];
  for (const address of options.listen ?? [])
    appendFileSync(join(data, 'pg_hba.conf'), `host all all ${address.replace(/\.\d+$/, '.0')}/24 trust\n`);
  const ctlArgs = (action: string, extra: string[] = []) => [
    '-D',
    data,
    '-l',
    join(dir, 'log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=${listen.join(',')} -c fsync=off`,
    action,
    ...extra,
  ];
  const ctlAsync = (action: string, extra: string[] = []) => {
    const args = ctlArgs(action, extra);
    const [cmd, argv] =
      userInfo().uid === 0
        ? ['runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args]]
        : [join(bin, 'pg_ctl'), args];
    return new Promise<void>((resolve, reject) =>
      execFile(cmd as string, argv as string[], (error) => (error ? reject(error) : resolve())),
    );
  };
  const ctl = (action: string, extra: string[] = []) =>
    asPostgres(join(bin, 'pg_ctl'), ctlArgs(action, extra));
  ctl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => ctl('start'),
    stop: () => ctl('stop', ['-m', 'fast']),
    restart: () => ctl('restart', ['-m', 'fast']),
    startAsync: () => ctlAsync('start'),
    stopAsync: () => ctlAsync('stop', ['-m', 'fast']),
    remove: () => {
      try {
        ctl('stop', ['-m', 'immediate']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function findBin(): string {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
  return join(root, version!, 'bin');
}

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}
