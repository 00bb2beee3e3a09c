// A business app built on @kapso/whatsapp-cloud-api 0.3.0, driven by the sdk-tests harness.
//
// - receiving: an http server whose POST /webhook checks X-Hub-Signature-256 with kapso's
//   verifySignature() over the exact bytes received and parses them with normalizeWebhook();
//   every delivery appends one JSON line to --events (kapso has no GET handshake helper, so
//   the handshake is answered here the way Meta's docs describe it);
// - sending: POST /control/<action> runs one kapso client call and answers its result or
//   the GraphApiError it threw.
//
// Prints `READY http://127.0.0.1:PORT` on stdout once it listens.
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { WhatsAppClient } from "@kapso/whatsapp-cloud-api";
import { normalizeWebhook, verifySignature } from "@kapso/whatsapp-cloud-api/server";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    events: { type: "string" },
    "phone-id": { type: "string" },
    "waba-id": { type: "string" },
    "display-number": { type: "string" },
    token: { type: "string" },
    "app-secret": { type: "string" },
    "verify-token": { type: "string" },
    "graph-version": { type: "string" },
  },
});
for (const k of ["base", "events", "phone-id", "waba-id", "token", "app-secret", "verify-token"]) {
  if (!args[k]) {
    console.error(`missing --${k}`);
    process.exit(2);
  }
}

const phoneNumberId = args["phone-id"];
const businessAccountId = args["waba-id"];
const appSecret = args["app-secret"];
// Without --graph-version kapso uses its own default (v23.0 in 0.3.0).
const client = new WhatsAppClient({
  accessToken: args.token,
  baseUrl: args.base,
  ...(args["graph-version"] ? { graphVersion: args["graph-version"] } : {}),
});

// An SDP answer/offer as a business media server would give it (the emulator does no media).
const SDP_ANSWER = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE audio",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 126",
  "c=IN IP4 0.0.0.0",
  "a=ice-ufrag:sdkT",
  "a=ice-pwd:sdkTestsIcePasswordValue0123",
  "a=fingerprint:sha-256 1B:B6:6B:40:A5:0B:8C:75:0D:8C:CB:90:2F:99:74:1E:26:45:AE:AF:45:C1:51:60:8F:73:C9:2D:10:6D:8A:88",
  "a=setup:active",
  "a=mid:audio",
  "a=rtpmap:111 opus/48000/2",
  "a=rtpmap:126 telephone-event/8000",
  "",
].join("\r\n");
const SDP_OFFER = SDP_ANSWER.replace("a=setup:active", "a=setup:actpass");

function record(kind, fields) {
  appendFileSync(args.events, JSON.stringify({ kind, ...fields }) + "\n");
}

function errorJson(e) {
  return {
    class: e?.name ?? typeof e,
    code: e?.code,
    httpStatus: e?.httpStatus,
    type: e?.type,
    category: e?.category,
    message: String(e?.message ?? e),
    details: e?.details,
  };
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

const actions = {
  send_text: (a) => client.messages.sendText({ phoneNumberId, to: a.to, body: a.text }),
  // kapso has no voice_call builder: its raw interactive pass-through.
  send_voice_call_button: (a) =>
    client.messages.sendInteractiveRaw({
      phoneNumberId,
      to: a.to,
      interactive: {
        type: "voice_call",
        body: { text: a.text },
        action: {
          name: "voice_call",
          parameters: { displayText: a.title, ttlMinutes: a.ttl_minutes, payload: a.payload },
        },
      },
    }),
  request_call_permission: (a) =>
    client.messages.sendInteractiveCallPermission({
      phoneNumberId,
      to: a.to,
      bodyText: a.text,
      // kapso always sends action.parameters.phone_number (an extra field Graph ignores).
      parameters: { phoneNumber: args["display-number"] ?? a.to, callPurpose: a.purpose },
    }),
  create_template: (a) =>
    client.templates.create({
      businessAccountId,
      name: a.name,
      language: a.language ?? "en_US",
      category: a.category ?? "MARKETING",
      components: [
        { type: "BODY", text: a.body },
        // lower-case spelling on purpose: both spellings occur in the wild.
        { type: "BUTTONS", buttons: [{ type: "voice_call", text: a.button_text }] },
      ],
    }),
  send_template: (a) =>
    client.messages.sendTemplate({
      phoneNumberId,
      to: a.to,
      template: {
        name: a.name,
        language: { code: a.language ?? "en_US", policy: "deterministic" },
        components: [
          {
            type: "button",
            subType: "voice_call",
            index: "0",
            parameters: [
              ...(a.ttl_minutes !== undefined ? [{ type: "ttl_minutes", ttlMinutes: a.ttl_minutes }] : []),
              ...(a.payload !== undefined ? [{ type: "payload", payload: a.payload }] : []),
            ],
          },
        ],
      },
    }),
  connect: (a) =>
    client.calls.connect({
      phoneNumberId,
      to: a.to,
      session: { sdpType: "offer", sdp: SDP_OFFER },
      bizOpaqueCallbackData: a.tracker,
    }),
  pre_accept: (a) => client.calls.preAccept({ phoneNumberId, callId: a.call_id, session: { sdpType: "answer", sdp: SDP_ANSWER } }),
  accept: (a) =>
    client.calls.accept({
      phoneNumberId,
      callId: a.call_id,
      session: { sdpType: "answer", sdp: SDP_ANSWER },
      bizOpaqueCallbackData: a.tracker,
    }),
  reject: (a) => client.calls.reject({ phoneNumberId, callId: a.call_id }),
  terminate: (a) => client.calls.terminate({ phoneNumberId, callId: a.call_id }),
  get_permissions: (a) => client.calls.permissions.get({ phoneNumberId, userWaId: a.wa_id }),
  // Every delivery in the emulator's log, checked by kapso's verifySignature over its raw bytes.
  verify_delivery_log: async () => {
    const res = await fetch(`${args.base}/__emulator/webhooks`);
    const log = await res.json();
    return log.deliveries.map((d) => ({
      id: d.id,
      field: d.field,
      event: d.event,
      state: d.state,
      ascii_only: /^[\x00-\x7f]*$/.test(d.raw),
      verified: verifySignature({ appSecret, rawBody: d.raw, signatureHeader: d.signature }),
    }));
  },
};

const server = createServer(async (req, res) => {
  const url = new URL(req.url, "http://localhost");
  try {
    if (url.pathname === "/webhook" && req.method === "GET") {
      const ok = url.searchParams.get("hub.mode") === "subscribe" && url.searchParams.get("hub.verify_token") === args["verify-token"];
      res.writeHead(ok ? 200 : 403, { "Content-Type": "text/plain" });
      res.end(ok ? url.searchParams.get("hub.challenge") ?? "" : "Forbidden");
      return;
    }
    if (url.pathname === "/webhook" && req.method === "POST") {
      const raw = await readBody(req);
      const signature = req.headers["x-hub-signature-256"];
      const verified = verifySignature({ appSecret, rawBody: raw, signatureHeader: signature });
      // Receivers that read the body as text first verify over the decoded string.
      const verifiedAsText = verifySignature({ appSecret, rawBody: raw.toString("utf8"), signatureHeader: signature });
      let payload = null;
      try {
        payload = JSON.parse(raw.toString("utf8"));
      } catch {}
      const normalized = payload ? normalizeWebhook(payload) : null;
      record("webhook", {
        verified,
        verified_as_text: verifiedAsText,
        ascii_only: raw.every((b) => b < 0x80),
        content_length: req.headers["content-length"] ?? null,
        chunked: (req.headers["transfer-encoding"] ?? "").includes("chunked"),
        content_type: req.headers["content-type"] ?? null,
        field: payload?.entry?.[0]?.changes?.[0]?.field ?? null,
        raw: raw.toString("utf8"),
        normalized,
      });
      res.writeHead(verified ? 200 : 401, { "Content-Type": "text/plain" });
      res.end(verified ? "ok" : "bad signature");
      return;
    }
    const m = url.pathname.match(/^\/control\/([a-z_]+)$/);
    if (m && req.method === "POST") {
      const body = await readBody(req);
      const a = body.length ? JSON.parse(body.toString("utf8")) : {};
      const action = actions[m[1]];
      let out;
      if (!action) out = { ok: false, error: { class: "UnknownAction", message: m[1] } };
      else {
        try {
          out = { ok: true, result: await action(a) };
        } catch (e) {
          out = { ok: false, error: errorJson(e) };
        }
      }
      const text = JSON.stringify(out);
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(e?.stack ?? e));
  }
});

server.listen(0, "127.0.0.1", () => {
  console.log(`READY http://127.0.0.1:${server.address().port}`);
});
