import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * Where the console's build is: `dist/console` of this package, which ships it. The same path
 * from `src/server/` (the workspace) and from `dist/server/` (the published build); in the
 * workspace, `npm install` and `npm start` build it (`packages/console/ensure-built.mjs`).
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/**
 * Serves the web console at `/`. It routes on the URL fragment (`/#/jobs`), so only its files are
 * served: no catch-all that could hide a mistyped API path. Assets have content hashes in their
 * names and are cached for a year; index.html is revalidated every time.
 */
export async function serveConsole(app: FastifyInstance, dir = CONSOLE_DIR): Promise<void> {
  if (!existsSync(`${dir}index.html`)) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply
        .status(503)
        .type('text/html')
        .send('<p>The Kairos console is not built. Run <code>npm run build:console</code> and restart.</p>'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    setHeaders: (reply, path) => {
      reply.header(
        'cache-control',
        path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
      // No framing by other sites (clickjacking), scripts only from the node itself.
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header(
        'content-security-policy',
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      );
    },
  });
}
