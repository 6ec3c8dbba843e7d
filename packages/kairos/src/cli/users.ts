import { createInterface } from 'node:readline';
import type { UserRole } from '@kairos/client';
import type { Command } from 'commander';
import { formatTime, printJson, table } from './format.ts';
import { clientFrom, type GlobalFlags, UsageError } from './options.ts';

const ROLES: readonly UserRole[] = ['admin', 'operator', 'viewer'];

/** Registers `kairos users …` and `kairos tokens …` (admin token or an admin API token). */
export function registerUsers(program: Command): void {
  const users = program.command('users').description('console users and their roles (admin only)');

  users
    .command('create <name>')
    .description('create a console user; prompts for the password unless --password-stdin')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, options: { role: string; passwordStdin?: boolean }, cmd: Command) => {
      const role = parseRole(options.role);
      const password = options.passwordStdin ? await readStdin() : await prompt(`password for ${name}: `);
      if (password.length < 8) throw new UsageError('the password needs at least 8 characters');
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const user = await clientFrom(flags).createUser({ name, role, password });
      if (flags.json) return printJson(user);
      console.log(`created ${user.role} ${user.name}`);
    });

  users
    .command('list')
    .description('list users and roles')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listUsers();
      if (flags.json) return printJson(items);
      console.log(
        table(
          ['NAME', 'ROLE', 'SIGNS IN', 'CREATED'],
          items.map((u) => [
            u.name,
            u.role,
            u.issuer ? `sso ${u.issuer}` : 'password',
            formatTime(u.createdAt),
          ]),
        ),
      );
    });

  users
    .command('set-password <name>')
    .description("set a user's password (ends their sessions); prompts unless --password-stdin")
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, options: { passwordStdin?: boolean }, cmd: Command) => {
      const password = options.passwordStdin ? await readStdin() : await prompt(`new password for ${name}: `);
      if (password.length < 8) throw new UsageError('the password needs at least 8 characters');
      await clientFrom(cmd.optsWithGlobals<GlobalFlags>()).updateUser(name, { password });
      console.log(`password of ${name} changed`);
    });

  users
    .command('set-role <name> <role>')
    .description(`change a user's role: ${ROLES.join(', ')}`)
    .action(async (name: string, role: string, _options: unknown, cmd: Command) => {
      const user = await clientFrom(cmd.optsWithGlobals<GlobalFlags>()).updateUser(name, {
        role: parseRole(role),
      });
      console.log(`${user.name} is now ${user.role}`);
    });

  users
    .command('delete <name>')
    .description('delete a user and end their sessions')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      await clientFrom(cmd.optsWithGlobals<GlobalFlags>()).deleteUser(name);
      console.log(`deleted ${name}`);
    });

  const tokens = program.command('tokens').description('API tokens for scripts and workers (admin only)');

  tokens
    .command('create <name>')
    .description('create an API token; it is printed once')
    .requiredOption('--role <role>', `one of ${[...ROLES, 'worker'].join(', ')}`)
    .option('--groups <groups>', 'worker tokens: comma-separated groups the token may serve')
    .action(async (name: string, options: { role: string; groups?: string }, cmd: Command) => {
      const role = options.role === 'worker' ? 'worker' : parseRole(options.role);
      const groups = options.groups
        ?.split(',')
        .map((g) => g.trim())
        .filter(Boolean);
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const created = await clientFrom(flags).createToken({ name, role, ...(groups ? { groups } : {}) });
      if (flags.json) return printJson(created);
      console.log(created.token);
    });

  tokens
    .command('list')
    .description('list API tokens (never the tokens themselves)')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listTokens();
      if (flags.json) return printJson(items);
      console.log(
        table(
          ['ID', 'NAME', 'ROLE', 'GROUPS', 'CREATED BY', 'CREATED'],
          items.map((t) => [
            String(t.id),
            t.name,
            t.role,
            t.groups?.join(',') ?? '*',
            t.createdBy,
            formatTime(t.createdAt),
          ]),
        ),
      );
    });

  tokens
    .command('delete <id>')
    .description('revoke an API token')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const n = Number(id);
      if (!Number.isInteger(n) || n < 1)
        throw new UsageError('<id>: expected a token id from `kairos tokens list`');
      await clientFrom(cmd.optsWithGlobals<GlobalFlags>()).deleteToken(n);
      console.log(`revoked token ${n}`);
    });
}

function parseRole(value: string): UserRole {
  if (!(ROLES as readonly string[]).includes(value))
    throw new UsageError(`--role: expected one of ${ROLES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as UserRole;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text.replace(/\r?\n$/, '');
}

/** Reads a line from the terminal without echoing it. */
function prompt(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError('no terminal to prompt on: pass --password-stdin');
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    rl.question(question, (answer) => {
      rl.close();
      process.stdout.write('\n');
      resolve(answer);
    });
    output._writeToOutput = () => {};
  });
}
