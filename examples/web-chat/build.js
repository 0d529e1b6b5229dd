'use strict';
// Bundles the pages' scripts with esbuild into public/build/.
//
//   node build.js           one build
//   node build.js --serve   rebuild on every request and serve public/ on
//                           http://127.0.0.1:5173 (HOST and PORT override)
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

async function main() {
  copyTheme();
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
