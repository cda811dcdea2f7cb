/**
 * What every browser test of the admin UI shares: Debian's Chromium (skipped with a message
 * where it is missing), launched with the flags that keep it off the closed network, and the
 * UI's build, made when dist/ is missing or older than its sources.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

export const chromiumPath = '/usr/bin/chromium';

/** Whether Chromium is installed; when not, says so once for `what`. */
export function chromiumFor(what: string): boolean {
  const found = existsSync(chromiumPath);
  if (!found) console.warn(`Skipping ${what}: no Chromium at ${chromiumPath} (apt-get install -y chromium).`);
  return found;
}

/** Headless Chromium, without the background traffic that hangs it on a closed network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}

const webDir = fileURLToPath(new URL('../..', import.meta.url));

/** The newest modification time under `dir`. */
function newest(dir: string): number {
  let time = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) time = Math.max(time, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return time;
}

/** Builds the UI (Vite, programmatically) when dist/ is missing or older than its sources. */
export async function ensureBuilt(): Promise<void> {
  const index = join(webDir, 'dist', 'index.html');
  const sources = Math.max(
    newest(join(webDir, 'src')),
    statSync(join(webDir, 'index.html')).mtimeMs,
    statSync(join(webDir, 'vite.config.ts')).mtimeMs,
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const { build } = await import('vite');
  await build({ root: webDir, configFile: join(webDir, 'vite.config.ts'), logLevel: 'warn' });
}
