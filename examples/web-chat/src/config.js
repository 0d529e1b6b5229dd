// Where layer-idp and Layer are: query parameters, else the local defaults of
// `layer-idp serve --mock-layer-listen 127.0.0.1:8090`.
//
//   ?idp=http://127.0.0.1:8080&layer=http://127.0.0.1:8090&app_id=layer:///apps/staging/…
//
// Without app_id the page asks the emulator which app it serves (GET /_mock/apps, an
// emulator-only test control); with real Layer, give your app ID.
export async function loadConfig() {
  const params = new URLSearchParams(window.location.search);
  const config = {
    idp: (params.get('idp') || 'http://127.0.0.1:8080').replace(/\/$/, ''),
    layer: (params.get('layer') || 'http://127.0.0.1:8090').replace(/\/$/, ''),
    appId: params.get('app_id'),
  };
  if (!config.appId) {
    const res = await fetch(`${config.layer}/_mock/apps`).catch(() => null);
    const body = res && res.ok ? await res.json() : null;
    if (!body || !body.apps || !body.apps.length) {
      throw new Error(`No app ID: add ?app_id=layer:///apps/… to the address (the emulator at ${config.layer} did not answer)`);
    }
    config.appId = body.apps[0];
  }
  return config;
}
