import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULTS, resolveConfig } from '../config.ts';
import type { KairosNode } from '../node.ts';
import { keyValues } from './format.ts';
import { DEFAULT_URL, type GlobalFlags, parseIntFlag } from './options.ts';

interface NodeFlags extends GlobalFlags {
  port?: string;
  host?: string;
  databaseUrl?: string;
  config?: string;
  demo?: boolean;
}

/** Registers `kairos start` (all-in-one embedded node) and `kairos server` (a cluster node). */
export function registerServer(program: Command): void {
  program
    .command('start')
    .description('run an all-in-one node (API, scheduler, SQLite store in --data-dir)')
    .option('--demo', 'also create demo jobs and run an in-process worker for them')
    .option(
      '--port <port>',
      `port to listen on (env KAIROS_PORT, default ${DEFAULTS.port}; 0 picks a free one)`,
    )
    .option('--host <host>', `address to listen on (env KAIROS_HOST, default ${DEFAULTS.host})`)
    .option('--config <file>', 'JSON config file with KairosOptions keys (env KAIROS_CONFIG)')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<NodeFlags>();
      await runNode(flags, flags.demo === true);
    });

  program
    .command('server')
    .description('run a scheduler node; several nodes on one Postgres database form a cluster')
    .option(
      '--port <port>',
      `port to listen on (env KAIROS_PORT, default ${DEFAULTS.port}; 0 picks a free one)`,
    )
    .option('--host <host>', `address to listen on (env KAIROS_HOST, default ${DEFAULTS.host})`)
    .option(
      '--database-url <url>',
      'postgres://… or sqlite:<path> (env KAIROS_DATABASE_URL, default SQLite in --data-dir)',
    )
    .option('--config <file>', 'JSON config file with KairosOptions keys (env KAIROS_CONFIG)')
    .action(async (_options: unknown, cmd: Command) => {
      await runNode(cmd.optsWithGlobals<NodeFlags>(), false);
    });
}

/** Starts a node (and the demo), prints the banner, and stops both on SIGINT or SIGTERM. */
async function runNode(flags: NodeFlags, demo: boolean): Promise<void> {
  const port =
    flags.port === undefined ? undefined : parseIntFlag(flags.port, '--port', { min: 0, max: 65535 });
  const env = flags.config ? { ...process.env, KAIROS_CONFIG: resolve(flags.config) } : process.env;
  const config = resolveConfig(
    { port, host: flags.host, dataDir: flags.dataDir, databaseUrl: flags.databaseUrl },
    env,
  );
  // Loaded here so that client commands do not load the server, the store or the worker SDK.
  const { startNode } = await import('../node.ts');
  const node = await startNode(config);
  let demoHandle: { stop(): Promise<void> } | undefined;
  let login: { user: string; password: string | null } | undefined;
  try {
    if (demo) {
      const { startDemo, ensureDemoLogin } = await import('../demo.ts');
      demoHandle = await startDemo(node);
      login = await ensureDemoLogin(node);
    }
  } catch (error) {
    await node.stop();
    throw error;
  }
  console.log(banner(node, demo, login));

  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  // A second signal while stopping gives up on a clean stop.
  const force = () => process.exit(1);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  console.error(`\n${signal}: stopping…`);
  try {
    await demoHandle?.stop();
  } finally {
    await node.stop();
  }
  console.error('stopped');
  process.exit(0);
}

/**
 * What the node prints when it is up. Tokens are shown by the demo only (a terminal on one's own
 * machine); otherwise the banner says where they are kept, so that no token reaches a log.
 */
function banner(node: KairosNode, demo: boolean, login?: { user: string; password: string | null }): string {
  const { config } = node;
  const defaultDir = config.dataDir === resolve(DEFAULTS.dataDir);
  const credentialsFile = join(config.dataDir, 'credentials.json');
  const fromFile = tokensFromFile(credentialsFile, config);
  const tokens: Array<[string, string]> = demo
    ? [
        ['  admin token', config.adminToken],
        ['  worker token', config.workerToken],
      ]
    : [
        [
          '  tokens',
          fromFile
            ? `${credentialsFile} (mode 0600)`
            : 'as configured (KAIROS_ADMIN_TOKEN, KAIROS_WORKER_TOKEN)',
        ],
      ];
  const exports = demo
    ? `  export KAIROS_URL=${node.url} KAIROS_TOKEN=${config.adminToken} KAIROS_WORKER_TOKEN=${config.workerToken}`
    : fromFile
      ? `  export KAIROS_URL=${node.url} KAIROS_DATA_DIR=${config.dataDir}   # the CLI reads the tokens there`
      : `  export KAIROS_URL=${node.url} KAIROS_TOKEN=… KAIROS_WORKER_TOKEN=…`;
  const env =
    node.url === DEFAULT_URL && defaultDir
      ? []
      : ['', 'In another shell, point the CLI and workers at this node:', exports];
  const examples = demo
    ? [
        '  kairos jobs list',
        '  kairos runs list --job demo.hello',
        '  kairos jobs trigger demo.slow --params \'{"ms":5000}\'',
        '  kairos runs wait <run id>',
        '  kairos workers list',
      ]
    : [
        '  kairos worker --handlers ./handlers.ts',
        '  kairos jobs create hello --handler hello --every 10s',
        '  kairos runs list --job hello',
      ];
  return [
    '',
    `Kairos node running at ${node.url}`,
    '',
    keyValues([
      ['  data dir', config.dataDir],
      ['  database', config.database.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')],
      ['  node id', config.nodeId],
      ...tokens,
      ['  console', `${node.url}/`],
      ...(login
        ? [
            ['  console login', `${login.user} / ${login.password ?? '(password set earlier)'}`] as [
              string,
              string,
            ],
          ]
        : []),
    ]),
    ...env,
    '',
    'Try:',
    ...examples,
    '',
    'Press Ctrl+C to stop.',
    '',
  ].join('\n');
}

/** Whether the node runs with the tokens of its credentials file (generated at its first start). */
function tokensFromFile(path: string, config: KairosNode['config']): boolean {
  try {
    const saved = JSON.parse(readFileSync(path, 'utf8')) as { adminToken?: unknown; workerToken?: unknown };
    return saved.adminToken === config.adminToken && saved.workerToken === config.workerToken;
  } catch {
    return false;
  }
}
