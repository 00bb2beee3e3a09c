"""A business calling app on aiortc: the independent WebRTC stack of the media tests.

It answers the emulator's webhooks (GET handshake, signed POSTs) and speaks Graph
`/{phone}/calls` itself with httpx; aiortc does ICE, DTLS-SRTP and opus. Every webhook
change is appended to the events file as one JSON line (`kind`: `call_connect`,
`call_terminate`, `call_status`, `other`), and `POST /control/<action>` runs one step:

- `answer` `{"call_id", "tone_hz"?, "mute"?, "wrong_fingerprint"?}`: aiortc's answer to
  the user's offer (from the connect webhook), sent with pre_accept then accept.
- `call` `{"to", "tone_hz"?}`: aiortc's offer in a `connect`; the answer comes in the
  connect webhook and is set as the remote description.
- `stats` `{"call_id"}`: what aiortc saw (ICE and connection state, RTP packets, level
  of the last 500 ms of decoded audio, RFC 4733 digits).
- `terminate` `{"call_id"}`.

aiortc offers opus and no telephone-event; this app adds telephone-event/8000 (PT 126)
to aiortc's codecs and reads those packets before aiortc's decoders would drop them.
The tests run on loopback only, so aiortc's host candidates are 127.0.0.1 (aioice skips
loopback by default).
"""

import argparse
import array
import asyncio
import fractions
import hashlib
import hmac
import json
import math
import re
import socket
import sys
import threading
import time

import aioice.ice
import fastapi
import httpx
import uvicorn
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from av import AudioFrame

DTMF_PT = 126
KEYS = "0123456789*#ABCD"
RATE = 48000
SAMPLES = 960  # 20 ms

# Loopback only: aioice's host candidates would be every interface but loopback.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
# telephone-event/8000 after opus: aiortc still sends opus (the first codec).
CODECS["audio"].append(
    RTCRtpCodecParameters(mimeType="audio/telephone-event", clockRate=8000, channels=1, payloadType=DTMF_PT)
)

_handle_rtp = RTCRtpReceiver._handle_rtp_packet


async def _counting_handle_rtp(self, packet, arrival_time_ms):
    """Counts the receiver's RTP, and reads RFC 4733 events aiortc has no decoder for."""
    stats = getattr(self, "wa_stats", None)
    if stats is not None:
        stats.packet(packet)
        if packet.payload_type == DTMF_PT:
            return
    await _handle_rtp(self, packet, arrival_time_ms)


RTCRtpReceiver._handle_rtp_packet = _counting_handle_rtp


class Stats:
    def __init__(self):
        self.packets = 0
        self.audio_packets = 0
        self.dtmf_packets = 0
        self.digits = ""
        self._ended = set()  # RTP timestamps of events whose end was seen
        self.frames = 0
        self.levels = []  # mean power of the last 25 decoded frames

    def packet(self, p):
        self.packets += 1
        if p.payload_type != DTMF_PT:
            self.audio_packets += 1
            return
        self.dtmf_packets += 1
        if len(p.payload) >= 4 and p.payload[1] & 0x80 and p.timestamp not in self._ended:
            # The end packet is sent three times (RFC 4733 §2.5.1.4): one digit per event.
            self._ended.add(p.timestamp)
            if p.payload[0] < len(KEYS):
                self.digits += KEYS[p.payload[0]]

    def frame(self, frame):
        # s16 interleaved (aiortc's opus decoder); the plane's buffer is padded past the samples.
        used = frame.samples * len(frame.layout.channels) * 2
        pcm = array.array("h", bytes(frame.planes[0])[:used])
        if not pcm:
            return
        power = sum((s / 32768.0) ** 2 for s in pcm) / len(pcm)
        self.frames += 1
        self.levels = (self.levels + [power])[-25:]

    def level_dbfs(self):
        if not self.levels:
            return None
        power = sum(self.levels) / len(self.levels)
        return round(10 * math.log10(max(power, 1e-10)), 1)


class Tone(MediaStreamTrack):
    """A sine at `hz` and `amplitude` (of full scale), or nothing ever when `mute`."""

    kind = "audio"

    def __init__(self, hz=0.0, amplitude=0.3, mute=False):
        super().__init__()
        self.hz, self.amplitude, self.mute = hz, amplitude, mute
        self.sent = 0
        self._start = None

    async def recv(self):
        if self.mute:
            await asyncio.Event().wait()
        if self._start is None:
            self._start = time.time()
        else:
            await asyncio.sleep(self._start + self.sent * SAMPLES / RATE - time.time())
        n0 = self.sent * SAMPLES
        step = 2 * math.pi * self.hz / RATE
        # Stereo as aiortc's opus encoder wants it: a mono frame would be upmixed 3 dB down.
        pcm = array.array("h")
        for i in range(SAMPLES):
            v = int(32767 * self.amplitude * math.sin(step * (n0 + i)))
            pcm.extend((v, v))
        frame = AudioFrame(format="s16", layout="stereo", samples=SAMPLES)
        frame.planes[0].update(pcm.tobytes())
        frame.pts = n0
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += 1
        return frame


class Call:
    def __init__(self, tone):
        self.pc = RTCPeerConnection()
        self.stats = Stats()
        self.tone = tone
        self.pc.addTrack(tone)

        @self.pc.on("track")
        def on_track(track):
            asyncio.ensure_future(self._listen(track))

    def watch_receivers(self):
        for t in self.pc.getTransceivers():
            t.receiver.wa_stats = self.stats

    async def _listen(self, track):
        try:
            while True:
                self.stats.frame(await track.recv())
        except Exception:
            return


def build(args):
    app = fastapi.FastAPI()
    graph = f"{args.base.rstrip('/')}/v{args.graph_version}/{args.phone_id}/calls"
    headers = {"Authorization": f"Bearer {args.token}"}
    calls: dict[str, Call] = {}
    offers: dict[str, str] = {}  # call id → the user's offer SDP
    answers: dict[str, str] = {}  # call id → the user's answer to our offer, until applied
    lock = threading.Lock()

    def record(kind, **fields):
        with lock, open(args.events, "a") as f:
            f.write(json.dumps({"kind": kind, **fields}) + "\n")

    async def graph_post(body):
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(graph, json={"messaging_product": "whatsapp", **body}, headers=headers)
        return {"status": r.status_code, "body": r.json()}

    async def apply_answer(call_id):
        if call_id in calls and call_id in answers:
            pc = calls[call_id].pc
            await pc.setRemoteDescription(RTCSessionDescription(answers.pop(call_id), "answer"))
            print(f"answer set: {call_id} ice={pc.iceConnectionState}", flush=True)

    @app.get("/webhook")
    def verify(request: fastapi.Request):
        q = request.query_params
        if q.get("hub.verify_token") != args.verify_token:
            return fastapi.Response(status_code=403)
        return fastapi.Response(q.get("hub.challenge", ""), media_type="text/plain")

    @app.post("/webhook")
    async def webhook(request: fastapi.Request):
        raw = await request.body()
        want = "sha256=" + hmac.new(args.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-hub-signature-256", ""), want):
            record("bad_signature")
            return fastapi.Response(status_code=401)
        for entry in json.loads(raw).get("entry", []):
            for change in entry.get("changes", []):
                value = change.get("value", {})
                for c in value.get("calls", []):
                    # A failure's `errors` sit beside `calls` (138021 and the like).
                    record(f"call_{c.get('event')}", **c, errors=value.get("errors"))
                    sdp = (c.get("session") or {}).get("sdp")
                    if c.get("event") == "connect" and sdp:
                        if c["session"].get("sdp_type") == "answer":
                            # Our offer's answer (business-initiated); it may overtake
                            # the Graph response that names the call.
                            answers[c["id"]] = sdp
                            await apply_answer(c["id"])
                        else:
                            offers[c["id"]] = sdp
                    if c.get("event") == "terminate" and c["id"] in calls:
                        await calls[c["id"]].pc.close()
                for s in value.get("statuses", []):
                    record("call_status" if s.get("type") == "call" else "status", **s)
                if not value.get("calls") and not value.get("statuses"):
                    record("other", field=change.get("field"))
        return {"ok": True}

    @app.post("/control/{action}")
    async def control(action: str, a: dict = fastapi.Body(default={})):
        if action == "answer":
            call = Call(Tone(a.get("tone_hz", 0.0), mute=a.get("mute", False)))
            await call.pc.setRemoteDescription(RTCSessionDescription(offers[a["call_id"]], "offer"))
            await call.pc.setLocalDescription(await call.pc.createAnswer())
            call.watch_receivers()
            calls[a["call_id"]] = call
            sdp = call.pc.localDescription.sdp
            if a.get("wrong_fingerprint"):
                # The last byte of the fingerprint changed: the certificate no longer matches.
                sdp = re.sub(
                    r"(a=fingerprint:sha-256 [0-9A-F:]*)([0-9A-F]{2})",
                    lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"),
                    sdp,
                )
            session = {"sdp_type": "answer", "sdp": sdp}
            out = {"sdp": sdp}
            for step in ("pre_accept", "accept"):
                out[step] = await graph_post({"call_id": a["call_id"], "action": step, "session": session})
            return out
        if action == "call":
            call = Call(Tone(a.get("tone_hz", 0.0)))
            await call.pc.setLocalDescription(await call.pc.createOffer())
            call.watch_receivers()
            sdp = call.pc.localDescription.sdp
            res = await graph_post({"to": a["to"], "action": "connect", "session": {"sdp_type": "offer", "sdp": sdp}})
            ids = [c.get("id") for c in res["body"].get("calls", [])]
            if ids:
                calls[ids[0]] = call
                await apply_answer(ids[0])
            return {"sdp": sdp, "connect": res}
        if action == "stats":
            call = calls.get(a["call_id"])
            if call is None:
                return {"call": "gone"}
            s = call.stats
            return {
                "ice": call.pc.iceConnectionState,
                "connection": call.pc.connectionState,
                "packets": s.packets,
                "audio_packets": s.audio_packets,
                "dtmf_packets": s.dtmf_packets,
                "frames": s.frames,
                "level_dbfs": s.level_dbfs(),
                "dtmf": s.digits,
                "sent_frames": call.tone.sent,
            }
        if action == "terminate":
            return await graph_post({"call_id": a["call_id"], "action": "terminate"})
        return fastapi.Response(status_code=404)

    return app


def main():
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("--base", "--events", "--phone-id", "--waba-id", "--token", "--app-secret", "--verify-token"):
        p.add_argument(name, required=True)
    p.add_argument("--graph-version", default="23.0")
    args = p.parse_args()
    app = build(args)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))

    def announce():
        while not server.started:
            threading.Event().wait(0.02)
        print(f"READY http://127.0.0.1:{port}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
