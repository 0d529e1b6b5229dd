// Where layer-idp and Layer are: query parameters, else the local defaults of
// `layer-idp serve --mock-layer-listen 127.0.0.1:8090`.
//
//   ?idp=http://127.0.0.1:8080&layer=http://127.0.0.1:8090&app_id=layer:///apps/staging/…
//
// Without app_id the page uses the app build.js found (LAYER_APP_ID, or the emulator's first
// app, asked at build time: the emulator's test controls do not answer web pages); with real
// Layer, give your app ID.
/* global __DEFAULT_LAYER_APP_ID__ */
export async function loadConfig() {
  const params = new URLSearchParams(window.location.search);
  const config = {
    idp: (params.get('idp') || 'http://127.0.0.1:8080').replace(/\/$/, ''),
    layer: (params.get('layer') || 'http://127.0.0.1:8090').replace(/\/$/, ''),
    appId: params.get('app_id') || __DEFAULT_LAYER_APP_ID__,
  };
  if (!config.appId) {
    throw new Error('No app ID: add ?app_id=layer:///apps/… to the address (the emulator prints its apps at start; '
      + '`curl http://127.0.0.1:8090/_mock/apps` lists them), or set LAYER_APP_ID for `npm start`');
  }
  return config;
}
