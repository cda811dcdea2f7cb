/**
 * The admin UI's build: a static single-page app under /ui/, bundled with its dependencies
 * (no CDN at run time) into dist/, hashed assets under dist/assets/. `npm run dev -w
 * @annals/web` serves it with hot reload and forwards API calls to `annals serve` on :3000.
 */
import { defineConfig } from 'vite';

const api = 'http://127.0.0.1:3000';
const apiPaths = [
  '/events',
  '/streams',
  '/subscribe',
  '/position',
  '/metrics',
  '/audit',
  '/health',
  '/changes',
  '/checkpoints',
  '/subscriptions',
  '/seals',
  '/verify',
  '/subjects',
];

export default defineConfig(({ command }) => ({
  base: '/ui/',
  // Production JSX in a build whatever NODE_ENV says (the tests build under NODE_ENV=test).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact', development: command === 'serve' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', reportCompressedSize: true },
  server: { proxy: Object.fromEntries(apiPaths.map((path) => [path, { target: api, changeOrigin: false }])) },
}));
