// Bundles the page (web/) into dist/web/: index.html, assets/app.js (web/main.ts with the client
// SDK), assets/app.css. No CDN, no inline script: the server's CSP allows scripts from itself only.
// Type-checking is tsc's job (web/tsconfig.json); esbuild only strips the types.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'web');

// Files are overwritten in place (fixed names), so a server running meanwhile never finds the page missing.
await mkdir(path.join(outdir, 'assets'), { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { app: 'web/main.ts' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  outdir: path.join(outdir, 'assets'),
  logLevel: 'warning',
});
await build({
  absWorkingDir: root,
  entryPoints: { app: 'web/styles.css' },
  bundle: true,
  minify: true,
  outdir: path.join(outdir, 'assets'),
  logLevel: 'warning',
});
await copyFile(path.join(root, 'web', 'index.html'), path.join(outdir, 'index.html'));
console.log(`web page built into ${path.relative(root, outdir)}/`);
