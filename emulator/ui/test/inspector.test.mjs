// The inspector in a real browser: starts the real wa-emulator binary and a webhook
// receiver that checks signatures with its own HMAC, opens /__emulator/ui in headless
// Chromium, and drives a whole call through the page's buttons: a user-initiated call on
// the default (+1) number, then a business-initiated one on the tenant's second number,
// since +1 numbers cannot call users (138013).
//
// Environment: WA_EMULATOR_BIN (the binary; the Rust test `inspector` in cli/tests sets it),
// CHROMIUM (default /usr/bin/chromium), INSPECTOR_SCREENSHOT (a PNG path to write).

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { chromium } from 'playwright-core';

const BIN = process.env.WA_EMULATOR_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOT = process.env.INSPECTOR_SCREENSHOT;
const SECRET = 'wa-emulator-secret';
const TOKEN = 'wa-emulator-token';
const VERIFY = 'wa-emulator-verify';
const PHONE = '106540352242922';
const USER = '16315551234';
const OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\n';
const WAIT = 20_000;

const cleanups = [];
const step = (s) => console.log(`  · ${s}`);

function fail(why) {
  throw new Error(why);
}

// The emulator on a free port; resolves with its base URL from the listening line.
function startEmulator() {
  if (!BIN) fail('WA_EMULATOR_BIN is not set: run this through `cargo test -p wa-emulator-cli --test it inspector`');
  const child = spawn(BIN, ['serve', '--clock', 'virtual', '--addr', '127.0.0.1:0', '--seed', '7'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // SIGTERM first (a clean shutdown), SIGKILL if it has not exited 3 s later.
  cleanups.push(() => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  }));
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the emulator did not start in time:\n${out}${err}`)), WAIT);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/wa-emulator listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`the emulator exited with ${code}:\n${out}${err}`)));
  });
}

// A receiver like a business's app: answers Meta's handshake, checks every signature
// against its own HMAC of the exact bytes, and keeps the bodies.
function startReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://receiver');
    if (req.method === 'GET') {
      const ok = url.searchParams.get('hub.mode') === 'subscribe' && url.searchParams.get('hub.verify_token') === VERIFY;
      res.writeHead(ok ? 200 : 403).end(ok ? url.searchParams.get('hub.challenge') : 'bad token');
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const expected = 'sha256=' + createHmac('sha256', SECRET).update(raw).digest('hex');
      const signature = req.headers['x-hub-signature-256'];
      received.push({ body: JSON.parse(raw.toString('utf8')), signature, valid: signature === expected });
      res.writeHead(signature === expected ? 200 : 401).end('ok');
    });
  });
  cleanups.push(() => server.close());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ url: `http://127.0.0.1:${server.address().port}/webhook`, received });
  }));
}

async function call(base, method, p, body, bearer) {
  const headers = { 'Content-Type': 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await r.json();
  if (!r.ok) fail(`${method} ${p} answered ${r.status}: ${JSON.stringify(json)}`);
  return json;
}

async function main() {
  const base = await startEmulator();
  step(`emulator at ${base}`);
  const receiver = await startReceiver();
  await call(base, 'PUT', '/__emulator/webhook', { url: receiver.url });
  step('webhook receiver verified');

  // launch() gives the browser a fresh temporary profile (its --user-data-dir) each run.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) foreign.push(r.url());
  });

  await page.goto(`${base}/__emulator/ui`);
  await page.locator('#live.on').waitFor({ timeout: WAIT });
  step('page loaded, event stream live');

  // Sent after the page loaded: it can only appear through the live updates.
  const sent = await call(base, `POST`, `/v21.0/${PHONE}/messages`, {
    messaging_product: 'whatsapp', to: USER, type: 'interactive',
    interactive: {
      type: 'voice_call', body: { text: 'Call us on WhatsApp now' },
      action: { name: 'voice_call', parameters: { display_text: 'Call Now', ttl_minutes: 100, payload: 'P' } },
    },
  }, TOKEN);
  const mid = sent.messages[0].id;
  const message = page.locator(`li[data-kind="message"][data-id="${mid}"]`);
  await message.waitFor({ timeout: WAIT });
  await message.locator('[data-kind="delivery"][data-event="status_delivered"][data-state="delivered"]').waitFor({ timeout: WAIT });
  const ttl = await message.locator('.ttl').textContent();
  if (!/expires in 1 h 40 min|expires in 1 h 39 min/.test(ttl)) fail(`the button's TTL reads ${JSON.stringify(ttl)}`);
  step('message appeared live with its button, TTL and delivered status webhook');

  await message.locator('[data-action="tap"]').click();
  const callItem = page.locator('li[data-kind="call"]').first();
  await callItem.waitFor({ timeout: WAIT });
  const callId = await callItem.getAttribute('data-id');
  const connect = callItem.locator('[data-kind="delivery"][data-field="calls"][data-event="connect"][data-state="delivered"]');
  await connect.waitFor({ timeout: WAIT });
  const connectText = await connect.textContent();
  if (!connectText.includes('HTTP 200')) fail(`the connect delivery shows ${JSON.stringify(connectText)}`);
  const callText = await callItem.textContent();
  for (const want of ['call button', 'ringing', 'cta_payload', '"P"']) {
    if (!callText.includes(want)) fail(`the call item lacks ${JSON.stringify(want)}: ${callText}`);
  }
  const rxConnect = receiver.received.find((r) => r.body.entry[0].changes[0].value.calls?.[0]?.event === 'connect');
  if (!rxConnect || !rxConnect.valid) fail('the receiver got no validly signed connect webhook');
  if (rxConnect.body.entry[0].changes[0].value.calls[0].id !== callId) fail('the page shows another call than the receiver got');
  await connect.locator('.head').click();
  const shownSig = await connect.locator('.delivery-details .mono').first().textContent();
  if (shownSig !== rxConnect.signature) fail(`the page shows signature ${shownSig}, the receiver got ${rxConnect.signature}`);
  step(`tap through the page started ${callId}; connect delivered, HTTP 200, signature matches the receiver's`);

  await callItem.locator('[data-action="biz-accept"]').click();
  await page.locator(`li[data-kind="call"][data-id="${callId}"][data-status="active"]`).waitFor({ timeout: WAIT });
  const before = await call(base, 'GET', '/__emulator/clock');
  await page.fill('#advance-secs', '42');
  await page.click('#advance-go');
  // The page shows the emulator's clock 42 s later.
  const later = new Date(before.now_ms + 42_000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  await page.locator('#clock-now', { hasText: later }).waitFor({ timeout: WAIT });
  await page.locator(`li[data-kind="call"][data-id="${callId}"] [data-action="hangup"]`).click();
  const ended = page.locator(`li[data-kind="call"][data-id="${callId}"][data-status="completed"]`);
  await ended.waitFor({ timeout: WAIT });
  const terminate = ended.locator('[data-kind="delivery"][data-field="calls"][data-event="terminate"][data-state="delivered"]');
  await terminate.waitFor({ timeout: WAIT });
  const duration = await ended.locator('.badge.duration').textContent();
  if (duration !== '42 s') fail(`the call's duration reads ${JSON.stringify(duration)}`);
  step('accepted, 42 s advanced, hung up through the page: terminate delivered, duration 42 s');

  await terminate.locator('[data-action="json"]').click();
  const json = JSON.parse(await page.locator('#json').textContent());
  const t = json.body.entry[0].changes[0].value.calls[0];
  if (t.status !== 'COMPLETED' || t.duration !== 42 || t.cta_payload !== 'P') {
    fail(`the JSON view shows the terminate webhook as ${JSON.stringify(t)}`);
  }
  step('JSON view shows the terminate body: COMPLETED, 42 s, cta_payload P');

  // Filtering by user hides what belongs to someone else.
  await call(base, 'POST', '/__emulator/users/447700900123/messages', { text: 'hi from someone else' });
  const other = page.locator('li[data-kind="delivery"][data-event="text"]');
  await other.waitFor({ timeout: WAIT });
  await page.selectOption('#f-user', USER);
  await other.waitFor({ state: 'detached', timeout: WAIT });
  await page.locator(`li[data-kind="call"][data-id="${callId}"]`).waitFor({ timeout: WAIT });
  step('the user filter hides the other user\'s webhook and keeps this user\'s call');

  // Business-initiated: only numbers outside +1, +20, +84, +234 can call users. The
  // config says which; the picker says so too.
  const config = await call(base, 'GET', '/__emulator/config');
  const uk = config.phone_numbers.find((n) => n.business_initiated_calling);
  if (!uk || uk.id === PHONE) fail(`no second number that can call users in ${JSON.stringify(config.phone_numbers)}`);
  const plusOne = await page.locator(`#phone option[value="${PHONE}"]`).textContent();
  if (!plusOne.includes('user calls only')) fail(`the +1 number reads ${JSON.stringify(plusOne)} in the picker`);
  const refused = await fetch(`${base}/v21.0/${PHONE}/calls`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ messaging_product: 'whatsapp', to: `+${USER}`, action: 'connect', session: { sdp_type: 'offer', sdp: OFFER } }),
  });
  const refusal = await refused.json();
  if (refused.status !== 400 || refusal.error?.code !== 138013) fail(`a call from the +1 number answered ${refused.status} ${JSON.stringify(refusal)}`);
  step(`the picker marks +${config.display_phone_number} as user calls only; a business call from it fails with 138013`);

  await page.selectOption('#phone', uk.id);
  await page.locator(`li[data-kind="call"][data-id="${callId}"]`).waitFor({ state: 'detached', timeout: WAIT });
  // The user writes to the UK number (its service window), and it asks for permission;
  // `to` has a `+`: without it the UK number's calling code would be prepended.
  await call(base, 'POST', `/__emulator/users/${USER}/messages`, { text: 'you may call me', phone_number_id: uk.id });
  const asked = await call(base, 'POST', `/v21.0/${uk.id}/messages`, {
    messaging_product: 'whatsapp', to: `+${USER}`, type: 'interactive',
    interactive: { type: 'call_permission_request', body: { text: 'May we call you?' }, action: { name: 'call_permission_request' } },
  }, TOKEN);
  const request = page.locator(`li[data-kind="message"][data-id="${asked.messages[0].id}"]`);
  await request.waitFor({ timeout: WAIT });
  await request.locator('[data-action="permission-accept"]').click();
  await page.locator(`li.user[data-wa="${USER}"] .user-perm`, { hasText: 'temporary permission' }).waitFor({ timeout: WAIT });
  const reply = receiver.received.find((r) => r.body.entry[0].changes[0].value.messages?.[0]?.interactive?.type === 'call_permission_reply');
  if (!reply || !reply.valid) fail('the receiver got no validly signed call_permission_reply');
  if (reply.body.entry[0].changes[0].value.metadata.phone_number_id !== uk.id) fail(`the reply came from ${JSON.stringify(reply.body.entry[0].changes[0].value.metadata)}`);
  step(`on +${uk.display_phone_number}: the permission request appeared, "Allow 7 days" in the page granted it`);

  const placed = await call(base, 'POST', `/v21.0/${uk.id}/calls`, {
    messaging_product: 'whatsapp', to: `+${USER}`, action: 'connect', session: { sdp_type: 'offer', sdp: OFFER },
    biz_opaque_callback_data: 'from-uk',
  }, TOKEN);
  const bizId = placed.calls[0].id;
  const bizCall = page.locator(`li[data-kind="call"][data-id="${bizId}"]`);
  await bizCall.waitFor({ timeout: WAIT });
  const bizText = await bizCall.textContent();
  for (const want of ['business-initiated', `Call to +${USER}`, 'ringing', '"from-uk"']) {
    if (!bizText.includes(want)) fail(`the business call item lacks ${JSON.stringify(want)}: ${bizText}`);
  }
  await bizCall.locator('[data-action="answer"]').click();
  await page.locator(`li[data-kind="call"][data-id="${bizId}"][data-status="active"]`).waitFor({ timeout: WAIT });
  await page.fill('#advance-secs', '30');
  await page.click('#advance-go');
  await page.locator(`li[data-kind="call"][data-id="${bizId}"] [data-action="hangup"]`).click();
  const bizEnded = page.locator(`li[data-kind="call"][data-id="${bizId}"][data-status="completed"]`);
  await bizEnded.waitFor({ timeout: WAIT });
  await bizEnded.locator('[data-kind="delivery"][data-field="calls"][data-event="terminate"][data-state="delivered"]').waitFor({ timeout: WAIT });
  const bizDuration = await bizEnded.locator('.badge.duration').textContent();
  if (bizDuration !== '30 s') fail(`the business call's duration reads ${JSON.stringify(bizDuration)}`);
  const bizTerm = receiver.received.find((r) => r.body.entry[0].changes[0].value.calls?.[0]?.id === bizId
    && r.body.entry[0].changes[0].value.calls[0].event === 'terminate');
  if (!bizTerm || !bizTerm.valid) fail('the receiver got no validly signed terminate for the business call');
  const bt = bizTerm.body.entry[0].changes[0].value;
  if (bt.metadata.phone_number_id !== uk.id || bt.calls[0].direction !== 'BUSINESS_INITIATED' || bt.calls[0].to !== USER) {
    fail(`the business call's terminate reads ${JSON.stringify(bt)}`);
  }
  step(`a business call from +${uk.display_phone_number}: answered and hung up in the page, 30 s, terminate delivered`);

  // Back on the +1 number: its own call is there, the UK number's is not.
  await page.selectOption('#phone', PHONE);
  await page.locator(`li[data-kind="call"][data-id="${callId}"]`).waitFor({ timeout: WAIT });
  await bizCall.waitFor({ state: 'detached', timeout: WAIT });
  step('each number shows its own timeline');

  // The user's media: a call the business has not answered is signalling only; once it
  // pre-accepts with an SDP that can connect (ICE, a fingerprint, a candidate nobody
  // answers on), the call shows the endpoint connecting, the level meter, what the user
  // says and the keys (polled from GET …/media).
  const mc = await call(base, 'POST', `/__emulator/users/${USER}/call`, { phone_number_id: PHONE });
  const mediaBox = page.locator(`li[data-kind="call"][data-id="${mc.call_id}"] [data-media]`);
  await page.locator(`li[data-kind="call"][data-id="${mc.call_id}"] [data-media][data-state="none"]`, { hasText: 'signalling only' }).waitFor({ timeout: WAIT });
  const CONNECTABLE = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 127.0.0.1\r\na=mid:0\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=candidate:c1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\n';
  await call(base, 'POST', `/v21.0/${PHONE}/calls`, {
    messaging_product: 'whatsapp', call_id: mc.call_id, action: 'pre_accept', session: { sdp_type: 'answer', sdp: CONNECTABLE },
  }, TOKEN);
  await call(base, 'POST', `/__emulator/calls/${mc.call_id}/play`, { tone_hz: 440 });
  await page.locator(`li[data-kind="call"][data-id="${mc.call_id}"] [data-media][data-state="connecting"]`, { hasText: 'the user says tone' }).waitFor({ timeout: WAIT });
  if ((await mediaBox.locator('meter.level').count()) !== 1) fail('the media box has no level meter');
  const mediaText = await mediaBox.textContent();
  for (const want of ['media connecting', 'no audio', '0 packets', 'keys none']) {
    if (!mediaText.includes(want)) fail(`the media box lacks ${JSON.stringify(want)}: ${mediaText}`);
  }
  await call(base, 'POST', `/__emulator/calls/${mc.call_id}/hangup`, {});
  step('a call\'s media: signalling only until the business\'s SDP can connect, then connecting, a level meter, the tone the user says, no keys yet');

  if (SHOT) {
    await page.selectOption('#f-user', '');
    await page.mouse.move(0, 0);
    await page.locator('#toast').waitFor({ state: 'hidden', timeout: WAIT });
    await page.waitForTimeout(1800); // let the "new item" highlight fade
    await page.screenshot({ path: SHOT });
    step(`screenshot written to ${SHOT}`);
  }

  if (foreign.length) fail(`the page loaded resources from elsewhere: ${foreign.join(', ')}`);
  if (problems.length) fail(problems.join('\n'));
}

const watchdog = setTimeout(() => {
  console.error('inspector browser test: timed out after 120 s');
  process.exit(1);
}, 120_000);

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`inspector browser test failed: ${e.stack || e}`);
} finally {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // Cleanup must not hide the test's own outcome.
    }
  }
  clearTimeout(watchdog);
}
console.log(failed ? '0 passed, 1 failed' : '1 passed, 0 failed');
process.exit(failed ? 1 : 0);
