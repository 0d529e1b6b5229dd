'use strict';
// Bundles the pages' scripts with esbuild into public/build/.
//
//   node build.js           one build
//   node build.js --serve   rebuild on every request and serve public/ on
//                           http://127.0.0.1:5173 (HOST and PORT override)
//
// The page's default Layer app ID is LAYER_APP_ID, else the first app of the Layer emulator
// at LAYER_URL (default http://127.0.0.1:8090), asked here, at build time: the emulator's
// test controls (/_mock/) do not answer web pages.
const fs = require('node:fs');
const esbuild = require('esbuild');

const options = {
  entryPoints: { chat: 'src/chat.js', xdk: 'src/xdk.js' },
  bundle: true,
  outdir: 'public/build',
  format: 'iife',
  target: 'es2019',
  sourcemap: true,
  // The SDK was written for browserify, which provided Node's `global`.
  define: { global: 'window' },
  logLevel: 'info',
};

// The XDK's theme, copied next to the bundles (it inlines its icons: no external assets).
function copyTheme() {
  fs.mkdirSync('public/build', { recursive: true });
  fs.copyFileSync(require.resolve('@layerhq/web-xdk/themes/layer-basic-blue.css'), 'public/build/layer-basic-blue.css');
}

async function defaultAppId() {
  if (process.env.LAYER_APP_ID) return process.env.LAYER_APP_ID;
  const layer = (process.env.LAYER_URL || 'http://127.0.0.1:8090').replace(/\/$/, '');
  try {
    const res = await fetch(`${layer}/_mock/apps`, { signal: AbortSignal.timeout(2000) });
    const body = res.ok ? await res.json() : null;
    if (body && body.apps && body.apps.length) return body.apps[0];
  } catch (err) {
    // No emulator there: the page asks for ?app_id=.
  }
  console.log(`no Layer app ID: set LAYER_APP_ID, start the emulator at ${layer}, or open the page with ?app_id=`);
  return '';
}

async function main() {
  copyTheme();
  options.define = { ...options.define, __DEFAULT_LAYER_APP_ID__: JSON.stringify(await defaultAppId()) };
  if (!process.argv.includes('--serve')) {
    await esbuild.build(options);
    return;
  }
  const ctx = await esbuild.context(options);
  const host = process.env.HOST || '127.0.0.1';
  const port = Number(process.env.PORT || 5173);
  const { port: actual } = await ctx.serve({ servedir: 'public', host, port });
  console.log(`web chat on http://${host}:${actual}/`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
