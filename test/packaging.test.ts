import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../packages/kairos/test/net.ts';

/**
 * The packages as a user gets them from the registry: scripts/pack.mjs (the steps of
 * deploy/Dockerfile too) builds and packs @kairos/client, @kairos/worker and @kairos/server and
 * installs the tarballs into an empty project outside the workspace. There, with plain Node.js
 * and no tsx: `kairos start` serves the API and the console on SQLite in that folder, an ESM
 * worker (with an isolated handler) and a CommonJS worker run the jobs a producer triggers
 * through @kairos/client, and a strict TypeScript file type-checks against the declarations.
 *
 * better-sqlite3's install script runs as on a user's machine, but the prebuilt binary it would
 * download (this machine reaches only the npm registry) comes from a local folder made of the
 * workspace's build of the same version (prebuild-install's `local_prebuilds` setting). With
 * another version it compiles the binding from source, which is slow but as correct.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./packaging/', import.meta.url));
const run = promisify(execFile);

const work = mkdtempSync(join(tmpdir(), 'kairos-packaging-'));
const app = join(work, 'app');
const tokens = { KAIROS_ADMIN_TOKEN: 'packaging-admin', KAIROS_WORKER_TOKEN: 'packaging-worker' };
/** Every process started here; killed at the end whatever happened. */
const children = new Set<ChildProcess>();

interface Packed {
  name: string;
  tarball: string;
  size: number;
  unpackedSize: number;
  files: string[];
}
let packed: Packed[];

/**
 * A user's shell: none of npm's settings of the outer `npm test`, none of the workspace's tools
 * on the PATH, and no NODE_OPTIONS (the workspace's carries the `@kairos/source` condition).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('npm_') || key === 'NODE_OPTIONS' || key.startsWith('VITEST')) continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.startsWith(ROOT))
    .join(delimiter);
  return { ...env, ...extra };
}

interface Started {
  process: ChildProcess;
  output: () => string;
  /** Resolves with the first stdout line that matches; rejects if the process exits first. */
  line: (pattern: RegExp, timeoutMs: number) => Promise<string>;
  exited: Promise<number | null>;
}

function start(command: string, args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(command, args, { cwd: app, env: userEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let output = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    output += chunk;
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      for (const wake of waiters) wake();
      resolve(code);
    }),
  );
  const line = (pattern: RegExp, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`no line ${pattern} from ${command} ${args.join(' ')} in ${timeoutMs} ms:\n${output}`),
        );
      }, timeoutMs);
      function check() {
        const found = stdout.split('\n').find((text) => pattern.test(text));
        if (found !== undefined || child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer);
          waiters.delete(check);
          if (found !== undefined) resolve(found);
          else reject(new Error(`${command} ${args.join(' ')} exited before ${pattern}:\n${output}`));
        }
      }
      waiters.add(check);
      check();
    });
  return { process: child, output: () => output, line, exited };
}

/** Stops a process with SIGTERM as a user's Ctrl+C would, and SIGKILL if it outstays a grace. */
async function stop(started: Started | undefined): Promise<void> {
  if (!started || started.process.exitCode !== null || started.process.signalCode !== null) return;
  started.process.kill('SIGTERM');
  const timer = setTimeout(() => started.process.kill('SIGKILL'), 15_000);
  await started.exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  // The prebuilt binary better-sqlite3's install script looks for, named as its releases are.
  const sqlite = join(ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(sqlite, 'package.json'), 'utf8')) as { version: string };
  const prebuilds = join(work, 'prebuilds');
  mkdirSync(prebuilds);
  const prebuilt = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run('tar', ['-czf', join(prebuilds, prebuilt), '-C', sqlite, 'build/Release/better_sqlite3.node']);

  const { stdout, stderr } = await run(
    process.execPath,
    [
      join(ROOT, 'scripts', 'pack.mjs'),
      '--out',
      join(work, 'tarballs'),
      '--install',
      app,
      '--prefer-offline',
      '--json',
    ],
    {
      cwd: ROOT,
      env: userEnv({ npm_config_better_sqlite3_local_prebuilds: prebuilds }),
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  packed = JSON.parse(stdout) as Packed[];
  console.log(
    stderr
      .split('\n')
      .filter((text) => /^@kairos\/\w+: .*kB packed/.test(text))
      .join('\n'),
  );
  for (const file of readdirSync(FIXTURES)) copyFileSync(join(FIXTURES, file), join(app, file));
}, 900_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('the tarballs', () => {
  it('hold the build and nothing of the workspace: no tests, fixtures or TypeScript sources', () => {
    expect(packed.map((entry) => entry.name)).toEqual(['@kairos/client', '@kairos/worker', '@kairos/server']);
    for (const { files } of packed) {
      const strays = files.filter(
        (file) =>
          !/^(package\.json|README\.md|LICENSE|bin\/[^/]+\.js|dist\/.+)$/.test(file) ||
          /(^|\/)(test|tests|__tests__|fixtures?)\//.test(file) ||
          /\.(test|spec)\.[cm]?[jt]s/.test(file) ||
          /conformance|test-database|workflow-review/.test(file) ||
          (file.endsWith('.ts') && !file.endsWith('.d.ts')),
      );
      expect(strays).toEqual([]);
    }
    const server = packed.find((entry) => entry.name === '@kairos/server')!.files;
    expect(server).toEqual(
      expect.arrayContaining([
        'bin/kairos.js',
        'dist/cli/main.js',
        'dist/index.d.ts',
        'dist/console/index.html',
        'dist/store/sqlite/migrations/0001_init.sql',
        'dist/store/postgres/migrations/0001_init.sql',
      ]),
    );
    expect(packed.find((entry) => entry.name === '@kairos/worker')!.files).toEqual(
      expect.arrayContaining([
        'dist/index.js',
        'dist/index.d.ts',
        'dist/isolated-runner.js',
        'dist/index.js.map',
        'dist/testing.js',
        'dist/testing.d.ts',
      ]),
    );
  });

  it('install without tsx: no package depends on it', () => {
    for (const name of ['client', 'worker', 'server']) {
      const manifest = JSON.parse(
        readFileSync(join(app, 'node_modules', '@kairos', name, 'package.json'), 'utf8'),
      );
      expect(Object.keys(manifest.dependencies ?? {})).not.toContain('tsx');
    }
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
  });
});

describe('installed into an empty project', () => {
  const kairos = join(app, 'node_modules', '.bin', 'kairos');
  let url: string;
  let node: Started | undefined;
  let esmWorker: Started | undefined;
  let cjsWorker: Started | undefined;

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // `npx kairos start` runs this bin; no data dir given: SQLite in the project's .kairos/.
    node = start(kairos, ['start', '--port', String(port)], { ...tokens, KAIROS_LOG_LEVEL: 'warn' });
    await node.line(/Kairos node running at/, 120_000);
    const env = { ...tokens, KAIROS_URL: url };
    esmWorker = start(process.execPath, ['worker.mjs'], env);
    cjsWorker = start(process.execPath, ['worker.cjs'], env);
    await Promise.all([esmWorker.line(/^ready \d+/, 120_000), cjsWorker.line(/^ready \d+/, 120_000)]);
  }, 300_000);

  afterAll(async () => {
    await Promise.all([stop(esmWorker), stop(cjsWorker)]);
    await stop(node);
  }, 60_000);

  it('kairos start serves the API and the console, with SQLite in the project folder', async () => {
    const health = await (await fetch(`${url}/v1/health`)).json();
    expect(health).toMatchObject({ status: 'ok', store: 'sqlite' });
    expect(existsSync(join(app, '.kairos', 'kairos.db'))).toBe(true);

    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<div id="root">');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
  });

  it('an ESM worker, its isolated handler and a CommonJS worker run the runs a producer triggers', async () => {
    const producer = start(process.execPath, ['producer.mjs'], {
      KAIROS_URL: url,
      KAIROS_TOKEN: tokens.KAIROS_ADMIN_TOKEN,
    });
    const line = await producer.line(/^\{/, 120_000);
    expect(await producer.exited).toBe(0);
    const runs = JSON.parse(line);
    const workerPid = Number(/^ready (\d+)/m.exec(esmWorker!.output())![1]);
    expect(runs).toEqual({
      'esm-double': { status: 'succeeded', result: { doubled: 42, by: 'esm', pid: workerPid }, error: null },
      'esm-isolated': {
        status: 'succeeded',
        result: { doubled: 100, by: 'isolated', pid: expect.any(Number) },
        error: null,
      },
      'cjs-double': {
        status: 'succeeded',
        result: { doubled: 200, by: 'cjs', pid: Number(/^ready (\d+)/m.exec(cjsWorker!.output())![1]) },
        error: null,
      },
    });
    // The isolated handler ran in a process of its own, started from the compiled runner.
    expect(runs['esm-isolated'].result.pid).not.toBe(workerPid);
  });

  it('the installed CLI drives the deploy example worker (deploy/worker.mjs)', async () => {
    copyFileSync(join(ROOT, 'deploy', 'worker.mjs'), join(app, 'deploy-worker.mjs'));
    const example = start(process.execPath, ['deploy-worker.mjs'], {
      KAIROS_URL: `${url}, ${url}`,
      KAIROS_WORKER_TOKEN: tokens.KAIROS_WORKER_TOKEN,
      KAIROS_WORKER_NAME: 'deploy-example',
    });
    try {
      await example.line(/^worker .* ready/, 120_000);
      const env = userEnv({ KAIROS_URL: url, KAIROS_TOKEN: tokens.KAIROS_ADMIN_TOKEN });
      await run(kairos, ['jobs', 'create', 'hello', '--handler', 'hello', '--manual'], { cwd: app, env });
      const triggered = await run(kairos, ['jobs', 'trigger', 'hello', '--params', '{"name":"deploy"}'], {
        cwd: app,
        env,
      });
      const id = /\d+/.exec(triggered.stdout)![0];
      const waited = await run(kairos, ['--json', 'runs', 'wait', id, '--timeout', '2m'], { cwd: app, env });
      expect(JSON.parse(waited.stdout)).toMatchObject({ status: 'succeeded', result: { hello: 'deploy' } });
      const { stdout } = await run(kairos, ['jobs', 'list'], { cwd: app, env });
      expect(stdout).toMatch(/esm-double/);
      expect(stdout).toMatch(/hello/);
    } finally {
      await stop(example);
    }
  });

  it('a handler runs under @kairos/worker/testing, without a node', async () => {
    const script =
      "import { runHandler } from '@kairos/worker/testing';" +
      "const r = await runHandler((ctx) => { ctx.log.info('hi'); return ctx.params.n * 2; }, { params: { n: 21 } });" +
      'console.log(JSON.stringify(r));';
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
      env: userEnv(),
    });
    expect(JSON.parse(stdout)).toEqual({
      status: 'succeeded',
      result: 42,
      logs: [{ level: 'info', message: 'hi' }],
      progress: [],
    });
  });

  it('the installed CLI says what a TypeScript handlers module needs', async () => {
    const env = userEnv({ KAIROS_URL: url, KAIROS_TOKEN: tokens.KAIROS_ADMIN_TOKEN });

    writeFileSync(join(app, 'handlers.ts'), 'export default { hello: async (): Promise<number> => 1 };\n');
    const failed = await run(kairos, ['worker', '--handlers', 'handlers.ts', '--token', 'x'], {
      cwd: app,
      env,
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(/needs a TypeScript loader: install tsx/);
  });
});

describe('a strict TypeScript project', () => {
  it('type-checks against the shipped declarations', async () => {
    const tsconfig = {
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        // The project's own @types/node: this test installs nothing else from the registry.
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], {
      cwd: app,
      env: userEnv(),
    }).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => error,
    );
    expect(result.stdout).toBe('');
    expect(result.code).toBe(0);
  }, 300_000);
});
