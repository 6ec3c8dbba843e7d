import { defineConfig } from 'vite';

// Vite's built-in JSX transform (automatic runtime) is all the console needs: no plugin, no HMR
// machinery in the build. `npm run dev -w @kairos/console` proxies the API to a local node.
export default defineConfig({
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { '/v1': process.env.KAIROS_URL ?? 'http://127.0.0.1:7070' },
  },
});
