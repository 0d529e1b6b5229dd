'use strict';
// The emulator's fan-out under load, driven by scripts/bench-emulator (read it first).
//
// USERS users log in for real (the emulator's nonce, layer-idp's /authenticate, the emulator's
// POST /sessions) and each opens a WebSocket (`layer-2.0`). They form conversations of SIZE
// participants; messages are sent over REST at RATE per second, round-robin over the
// conversations, each from one of its participants. Every other participant's socket must
// receive the Message `create`: the time from the send to each receipt is one sample.
//
// The run is PHASES phases of SECONDS each, in the same conversations, so a growing history
// shows up as the later phases' figures. Each phase prints one line; the last line sums up.
//
//   node scripts/bench-emulator.js IDP_URL LAYER_URL APP_ID SERVER_PID
// with USERS, SIZE, RATE, SECONDS, PHASES in the environment.

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const WebSocket = require(path.join(__dirname, '../tests/e2e/node_modules/ws'));

const [idp, layer, appId, serverPid] = process.argv.slice(2);
const USERS = Number(process.env.USERS || 100);
const SIZE = Number(process.env.SIZE || 10);
const RATE = Number(process.env.RATE || 800);
const SECONDS = Number(process.env.SECONDS || 10);
const PHASES = Number(process.env.PHASES || 1);
const PASSWORD = 'correct horse battery staple';
const CLK_TCK = 100; // Linux's USER_HZ

async function json(method, url, body, headers = {}) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', accept: 'application/vnd.layer+json; version=2.0', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** A real login: the emulator's challenge answered by layer-idp. */
async function login(i) {
  const email = `bench${i}@example.com`;
  const user = await json('POST', `${idp}/users`, { email, password: PASSWORD, display_name: `Bench ${i}` });
  const { nonce } = await json('POST', `${layer}/nonces`);
  const { identity_token } = await json('POST', `${idp}/authenticate`, { email, password: PASSWORD, nonce });
  const { session_token } = await json('POST', `${layer}/sessions`, { identity_token, app_id: appId });
  // The identity token's `prn` is the user's ID at layer-idp, which is their Layer user ID.
  return { session: session_token, id: user.id };
}

function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const users = [];
  for (let i = 0; i < USERS; i += 1) users.push(await login(i));

  const pending = new Map(); // tag -> { sentAt, expected, got }
  const samples = [];
  let received = 0;
  let stray = 0;
  const sockets = await Promise.all(users.map((user) => new Promise((resolve, reject) => {
    // eslint-disable-next-line no-shadow
    const ws = new WebSocket(`${layer.replace(/^http/, 'ws')}/websocket?session_token=${user.session}`, 'layer-2.0');
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const at = performance.now();
      const packet = JSON.parse(raw);
      if (packet.type !== 'change' || packet.body.operation !== 'create') return;
      if (!packet.body.object || packet.body.object.type !== 'Message') return;
      const tag = packet.body.data.parts[0].body;
      const entry = pending.get(tag);
      if (!entry) { stray += 1; return; }
      if (packet.body.data.sender && packet.body.data.sender.user_id === user.id) return; // the sender's own
      entry.got += 1;
      received += 1;
      samples.push(at - entry.sentAt);
    });
    ws.on('close', (code) => { if (code !== 1000) console.error(`a socket closed: ${code}`); });
  })));

  // Conversations of SIZE participants, made by their first participant.
  const conversations = [];
  for (let start = 0; start + SIZE <= USERS; start += SIZE) {
    const members = users.slice(start, start + SIZE);
    const created = await json('POST', `${layer}/conversations`,
      { participants: members.map((m) => m.id), distinct: false },
      { authorization: `Layer session-token="${members[0].session}"` });
    conversations.push({ id: created.id.split('/').pop(), members });
  }

  let seq = 0;
  let failedSends = 0;
  const lines = [];
  for (let phase = 1; phase <= PHASES; phase += 1) {
    samples.length = 0;
    let expected = 0;
    let sent = 0;
    const phaseTags = [];
    const cpu0 = cpuTicks(serverPid);
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    const total = RATE * SECONDS;
    const inflight = [];
    for (let n = 0; n < total; n += 1) {
      // Open loop: each send at its planned time, whether or not earlier ones answered.
      const due = t0 + (n * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const c = conversations[seq % conversations.length];
      const sender = c.members[Math.floor(seq / conversations.length) % c.members.length];
      seq += 1;
      const tag = `m${seq}`;
      pending.set(tag, { sentAt: performance.now(), expected: c.members.length - 1, got: 0 });
      phaseTags.push(tag);
      expected += c.members.length - 1;
      sent += 1;
      inflight.push(fetch(`${layer}/conversations/${c.id}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Layer session-token="${sender.session}"` },
        body: JSON.stringify({ parts: [{ mime_type: 'text/plain', body: tag }] }),
      }).then((res) => { if (res.status !== 201) failedSends += 1; return res.arrayBuffer(); })
        .catch(() => { failedSends += 1; }));
    }
    await Promise.all(inflight);
    const sendSeconds = (performance.now() - t0) / 1000;
    // Let the last deliveries arrive (at most 5 s, or until all have).
    const drainUntil = performance.now() + 5000;
    while (performance.now() < drainUntil
      && phaseTags.some((t) => pending.get(t).got < pending.get(t).expected)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const got = phaseTags.reduce((sum, t) => sum + pending.get(t).got, 0);
    for (const t of phaseTags) pending.delete(t);
    const cpu = (cpuTicks(serverPid) - cpu0) / CLK_TCK;
    const clientCpu = process.cpuUsage(client0);
    const sorted = samples.slice().sort((a, b) => a - b);
    const line = {
      phase,
      history: Math.round((seq) / conversations.length),
      sent,
      achieved_rate: sent / sendSeconds,
      p50_ms: percentile(sorted, 50),
      p99_ms: percentile(sorted, 99),
      max_ms: sorted[sorted.length - 1],
      lost: expected - got,
      expected,
      server_cpu_ms_per_msg: (cpu * 1000) / sent,
      server_rss_mib: rssMiB(serverPid),
      client_cpu_ms_per_msg: (clientCpu.user + clientCpu.system) / 1000 / sent,
      client_rss_mib: process.memoryUsage().rss / 1048576,
    };
    lines.push(line);
    console.log(`phase ${phase}: ${Object.entries(line).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : v}`).join(' ')}`);
  }
  for (const ws of sockets) ws.close(1000);
  const first = lines[0];
  const last = lines[lines.length - 1];
  const lost = lines.reduce((s, l) => s + l.lost, 0);
  console.log(
    `bench-emulator: ${USERS} users, ${SIZE}-person conversations, target ${RATE} msg/s: `
    + `achieved ${last.achieved_rate.toFixed(0)} msg/s (ratio ${(last.achieved_rate / RATE).toFixed(2)}), `
    + `p50 ${last.p50_ms.toFixed(1)} ms, p99 ${last.p99_ms.toFixed(1)} ms, max ${last.max_ms.toFixed(1)} ms, `
    + `lost ${lost}, failed sends ${failedSends}, stray ${stray}; server CPU ${last.server_cpu_ms_per_msg.toFixed(3)} ms/msg, `
    + `RSS ${last.server_rss_mib.toFixed(0)} MiB; history ${first.history} -> ${last.history} messages per conversation: `
    + `CPU per message ratio last/first ${(last.server_cpu_ms_per_msg / first.server_cpu_ms_per_msg).toFixed(2)}`,
  );
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
