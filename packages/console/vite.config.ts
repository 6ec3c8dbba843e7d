import { defaultClientConditions, defineConfig } from 'vite';

// Vite's built-in JSX transform (automatic runtime) is all the console needs: no plugin, no HMR
// machinery in the build. `npm run dev -w @kairos/console` proxies the API to a local node.
// The build goes inside the server package, which serves it and ships it (`dist/console`);
// `@kairos/client` is bundled from its sources (the `@kairos/source` export condition).
export default defineConfig({
  base: '/',
  resolve: { conditions: ['@kairos/source', ...defaultClientConditions] },
  build: {
    outDir: '../kairos/dist/console',
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      // React Flow marks itself "use client" (for server components, which the console has none of).
      onLog(level, log, handler) {
        if (log.code !== 'MODULE_LEVEL_DIRECTIVE') handler(level, log);
      },
    },
  },
  server: {
    proxy: { '/v1': process.env.KAIROS_URL ?? 'http://127.0.0.1:7070' },
  },
});
