'use strict';
// The emulator's fan-out under load, driven by scripts/bench-emulator (read it first).
//
// USERS users log in for real (the emulator's nonce, layer-idp's /authenticate, the emulator's
// POST /sessions) and each opens a WebSocket (`layer-2.0`). They form conversations of SIZE
// participants; messages are sent over REST (or with SEND=ws as `Message.create` requests on
// the sender's socket, as the WebSDK sends them) at RATE per second, round-robin over the
// conversations, each from one of its participants. Every other participant's socket must
// receive the Message `create`: the time from the send to each receipt is one sample.
//
// The run is PHASES phases of SECONDS each, in the same conversations, so a growing history
// shows up as the later phases' figures. Each phase prints one line; the last line sums up.
// With FILL (a list of histories, `FILL=100,10000`) there is one phase per entry, and before
// each the conversations are topped up to that many messages, as fast as the server takes
// them and not measured: the phases compare the same traffic at very different lengths.
//
//   node scripts/bench-emulator.js IDP_URL LAYER_URL APP_ID SERVER_PID
// with USERS, SIZE, RATE, SECONDS, PHASES (or FILL) in the environment.

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const WebSocket = require(path.join(__dirname, '../tests/e2e/node_modules/ws'));

const [idp, layer, appId, serverPid] = process.argv.slice(2);
const USERS = Number(process.env.USERS || 100);
const SIZE = Number(process.env.SIZE || 10);
const RATE = Number(process.env.RATE || 800);
const SECONDS = Number(process.env.SECONDS || 10);
const FILL = process.env.FILL ? process.env.FILL.split(',').map(Number) : null;
const PHASES = FILL ? FILL.length : Number(process.env.PHASES || 1);
const SEND_WS = process.env.SEND === 'ws';
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

  const pending = new Map(); // tag -> { sentAt, expected, got, sender }
  const requests = new Map(); // request_id -> resolve(success), for SEND=ws
  let requestId = 0;
  const samples = [];
  let received = 0;
  let stray = 0;
  let fillReceived = 0;
  const socketOf = new Map(); // user id -> WebSocket
  const sockets = await Promise.all(users.map((user) => new Promise((resolve, reject) => {
    // eslint-disable-next-line no-shadow
    const ws = new WebSocket(`${layer.replace(/^http/, 'ws')}/websocket?session_token=${user.session}`, 'layer-2.0');
    socketOf.set(user.id, ws);
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const at = performance.now();
      // Only what is needed is parsed: at thousands of packets a second, a JSON.parse of
      // each would make this client the bottleneck.
      const text = raw.toString();
      if (text.startsWith('{"type":"response"')) {
        const body = JSON.parse(text).body;
        const done = requests.get(body.request_id);
        if (done) { requests.delete(body.request_id); done(body.success); }
        return;
      }
      if (!text.startsWith('{"type":"change"') || !text.includes('"operation":"create"')
        || !text.includes('"type":"Message"')) return;
      const match = /"body":"((?:m|fill)\d+)"/.exec(text);
      if (!match) return;
      const tag = match[1];
      if (tag.startsWith('fill')) { fillReceived += 1; return; }
      const entry = pending.get(tag);
      if (!entry) { stray += 1; return; }
      if (entry.sender === user.id) return; // the sender's own
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
    conversations.push({ id: created.id.split('/').pop(), members, history: 0 });
  }

  /** Sends until every conversation holds `target` messages, then waits for their deliveries. */
  async function fill(target) {
    const jobs = [];
    for (const c of conversations) {
      for (; c.history < target; c.history += 1) jobs.push([c, c.members[c.history % c.members.length]]);
    }
    let fillSent = 0;
    let fillErrors = 0;
    let expectedFill = fillReceived;
    const worker = async () => {
      while (jobs.length) {
        const [c, sender] = jobs.pop();
        let res;
        try {
          res = await fetch(`${layer}/conversations/${c.id}/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Layer session-token="${sender.session}"` },
            body: JSON.stringify({ parts: [{ mime_type: 'text/plain', body: `fill${fillSent}` }] }),
          });
          await res.arrayBuffer();
        } catch (err) {
          // A pooled connection the server closed meanwhile: send it again.
          fillErrors += 1;
          if (fillErrors > 100) throw err;
          jobs.push([c, sender]);
          continue;
        }
        if (res.status !== 201) throw new Error(`a fill message was refused: ${res.status}`);
        fillSent += 1;
        expectedFill += c.members.length; // the sender's socket gets it too
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const until = performance.now() + 60000;
    while (fillReceived < expectedFill && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return fillSent;
  }

  let seq = 0;
  let failedSends = 0;
  const failures = new Map(); // status or error -> count, for the summary
  const fail = (why) => { failedSends += 1; failures.set(why, (failures.get(why) || 0) + 1); };
  const lines = [];
  for (let phase = 1; phase <= PHASES; phase += 1) {
    if (FILL) {
      const t = performance.now();
      const n = await fill(FILL[phase - 1]);
      console.log(`fill: ${n} messages to ${FILL[phase - 1]} per conversation in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const historyStart = Math.round(conversations.reduce((s, c) => s + c.history, 0) / conversations.length);
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
      // Behind schedule the loop would send without ever reading: let the sockets' packets in.
      else if (n % 16 === 0) await new Promise((r) => setImmediate(r));
      const c = conversations[seq % conversations.length];
      const sender = c.members[Math.floor(seq / conversations.length) % c.members.length];
      seq += 1;
      c.history += 1;
      const tag = `m${seq}`;
      pending.set(tag, { sentAt: performance.now(), expected: c.members.length - 1, got: 0, sender: sender.id });
      phaseTags.push(tag);
      expected += c.members.length - 1;
      sent += 1;
      if (SEND_WS) {
        requestId += 1;
        const id = requestId;
        inflight.push(new Promise((resolve) => {
          requests.set(id, (ok) => { if (!ok) fail('refused'); resolve(); });
        }));
        socketOf.get(sender.id).send(JSON.stringify({
          type: 'request',
          body: {
            method: 'Message.create',
            request_id: id,
            object_id: `layer:///conversations/${c.id}`,
            data: { parts: [{ mime_type: 'text/plain', body: tag }] },
          },
        }));
        continue;
      }
      inflight.push(fetch(`${layer}/conversations/${c.id}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Layer session-token="${sender.session}"` },
        body: JSON.stringify({ parts: [{ mime_type: 'text/plain', body: tag }] }),
      }).then((res) => { if (res.status !== 201) fail(res.status); return res.arrayBuffer(); })
        .catch((err) => { fail((err.cause && err.cause.code) || err.name); }));
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
      history_start: historyStart,
      history: Math.round(conversations.reduce((s, c) => s + c.history, 0) / conversations.length),
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
    + `lost ${lost}, failed sends ${failedSends}${failedSends ? ` (${[...failures].map(([k, n]) => `${k}: ${n}`).join(', ')})` : ''}, stray ${stray}; server CPU ${last.server_cpu_ms_per_msg.toFixed(3)} ms/msg, `
    + `RSS ${last.server_rss_mib.toFixed(0)} MiB; history ${first.history_start}..${first.history} -> `
    + `${last.history_start}..${last.history} messages per conversation, sent over ${SEND_WS ? 'WebSocket' : 'REST'}: `
    + `CPU per message ratio last/first ${(last.server_cpu_ms_per_msg / first.server_cpu_ms_per_msg).toFixed(2)}`,
  );
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
