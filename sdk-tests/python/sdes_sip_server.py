"""A business's SIP server with SDES-keyed SRTP media: the independent side of the SIP
media tests. SRTP is libsrtp's (pylibsrtp), opus is libopus through PyAV (aiortc's
codec classes), SIP is a few lines of UDP.

It answers the emulator's INVITE (the user calling the business) with 200 OK and its
own SDES SDP (its own key), sends a tone at 0.3 of full scale as opus in SRTP every
20 ms from the ACK on (the business sends first, cloud-api §8.3) to the address of the
user's SDP, and decrypts, decodes and measures what the user sends: packets, the level
of the last 500 ms, RFC 4733 digits on payload type 126. It answers BYE with 200 OK.

Modes (`--mode`): `tone` (above), `silent` (never sends), `wrong-key` (announces one
key and encrypts with another). `--rtp plain`: its SDP is `RTP/AVP` without a key and its
media plain RTP both ways (the emulator's `sip_plain_rtp`).

`--call USER_DIGITS` makes it the business's side of a business-initiated call instead (a
UAC): it sends an SDES offer (or a plain one) to the emulator's SIP gateway (`--gateway
HOST:PORT`) from `+--business@--from-host`, answers the 407 with an MD5 `qop=auth` digest
(username the business number's digits, `--password` its SIP password), ACKs the 200 OK,
and from then on talks first and measures what it hears as above; a `bye` line on stdin
sends BYE.

Stdout, one JSON object a line: `{"event": "ready", "sip_port"}` first, then
`{"event": "stats", …}` for each `stats` line written to stdin, `{"event": "bye"}` when the
emulator hangs up, and for `--call`: `{"event": "challenged"}`, `{"event": "ringing"}`,
`{"event": "answered", "sdp"}`, `{"event": "refused", "status"}`, `{"event": "bye_ok"}`.
"""

import argparse
import array
import asyncio
import base64
import fractions
import hashlib
import json
import math
import os
import re
import struct
import sys

from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from av import AudioFrame
from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

RATE = 48000
SAMPLES = 960
OPUS_PT = 111
DTMF_PT = 126
KEYS = "0123456789*#ABCD"
AMPLITUDE = 0.3


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def srtp_session(key: bytes, outbound: bool) -> Session:
    kind = Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND
    return Session(Policy(key=key, ssrc_type=kind, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))


class Plain:
    """RTP as it is: the `--rtp plain` side of `protect` and `unprotect`."""

    def protect(self, packet: bytes) -> bytes:
        return packet

    def unprotect(self, packet: bytes) -> bytes:
        return packet


class Media(asyncio.DatagramProtocol):
    def __init__(self, mode: str, our_key, sending_key):
        self.mode = mode
        self.our_key = our_key
        self.tx = Plain() if sending_key is None else srtp_session(sending_key, True)
        self.rx = None
        self.peer = None
        self.transport = None
        self.encoder = OpusEncoder()
        self.decoder = OpusDecoder()
        self.packets = 0
        self.undecryptable = 0
        self.levels = []
        self.digits = ""
        self.last_event = None
        self.sent = 0
        self.seq = 1000
        self.phase = 0

    def connection_made(self, transport):
        self.transport = transport

    def start(self, user_addr, user_key):
        self.peer = user_addr
        self.rx = Plain() if self.our_key is None else srtp_session(user_key, False)
        if self.mode != "silent":
            asyncio.get_running_loop().create_task(self.send_loop())

    async def send_loop(self):
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while self.transport is not None and not self.transport.is_closing():
            self.send_frame()
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def send_frame(self):
        # Stereo, each sample twice: a mono frame would be upmixed 3 dB quieter.
        pcm = array.array("h")
        for i in range(SAMPLES):
            v = int(AMPLITUDE * 32767 * math.sin(2 * math.pi * 440 * (self.phase + i) / RATE))
            pcm.extend((v, v))
        self.phase = (self.phase + SAMPLES) % RATE
        frame = AudioFrame(format="s16", layout="stereo", samples=SAMPLES)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = RATE
        frame.pts = self.seq * SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        payloads, _ = self.encoder.encode(frame)
        for payload in payloads:
            header = struct.pack("!BBHII", 0x80, OPUS_PT, self.seq & 0xFFFF, self.seq * SAMPLES & 0xFFFFFFFF, 0x51E5)
            self.seq += 1
            self.transport.sendto(self.tx.protect(header + payload), self.peer)
            self.sent += 1

    def datagram_received(self, data, addr):
        if self.rx is None or len(data) < 12 or 64 <= (data[1] & 0x7F) < 96:
            return
        try:
            rtp = self.rx.unprotect(data)
        except SrtpError:
            self.undecryptable += 1
            return
        self.packets += 1
        cc = rtp[0] & 0x0F
        start = 12 + 4 * cc
        if rtp[0] & 0x10:
            (words,) = struct.unpack("!H", rtp[start + 2 : start + 4])
            start += 4 + 4 * words
        pt = rtp[1] & 0x7F
        (ts,) = struct.unpack("!I", rtp[4:8])
        payload = rtp[start:]
        if pt == DTMF_PT and len(payload) >= 4:
            # One digit per event (its RTP timestamp), however many packets repeat it.
            if self.last_event != ts and payload[0] < len(KEYS):
                self.last_event = ts
                self.digits += KEYS[payload[0]]
        elif pt == OPUS_PT:
            for f in self.decoder.decode(JitterFrame(data=payload, timestamp=ts)):
                used = f.samples * len(f.layout.channels) * 2
                pcm = array.array("h", bytes(f.planes[0])[:used])
                power = sum(x * x for x in pcm) / (len(pcm) * 32768.0 * 32768.0) if pcm else 0.0
                self.levels = (self.levels + [power])[-25:]

    def stats(self):
        level = None
        if self.levels:
            power = sum(self.levels) / len(self.levels)
            level = round(10 * math.log10(power), 1) if power > 0 else -127.0
        return {
            "event": "stats",
            "packets": self.packets,
            "undecryptable": self.undecryptable,
            "sent": self.sent,
            "level_dbfs": level,
            "dtmf": self.digits,
        }


def sdp_of(body: str):
    """The user's address and key (None without one) from the emulator's SDP."""
    ip = re.search(r"^c=IN IP4 (\S+)", body, re.M).group(1)
    port = int(re.search(r"^m=audio (\d+) ", body, re.M).group(1))
    key = re.search(r"^a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)", body, re.M)
    return (ip, port), (base64.b64decode(key.group(1)) if key else None)


def parse(data: bytes):
    """A SIP message: its first line, headers (lower-case names, every value) and body."""
    text = data.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers, body


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest(challenge: str, user: str, password: str, method: str, uri: str) -> str:
    """The Proxy-Authorization answering a Digest challenge: MD5, qop=auth (RFC 2617)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    assert params.get("algorithm", "MD5").upper() == "MD5", challenge
    assert "auth" in params.get("qop", "").split(","), challenge
    cnonce, nc = os.urandom(8).hex(), "00000001"
    ha1 = md5(f"{user}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    answer = (
        f'Digest username="{user}",realm="{params["realm"]}",nonce="{params["nonce"]}",'
        f'uri="{uri}",response="{response}",algorithm=MD5,cnonce="{cnonce}",qop=auth,nc={nc}'
    )
    if "opaque" in params:
        answer += f',opaque="{params["opaque"]}"'
    return answer


class Sip(asyncio.DatagramProtocol):
    def __init__(self, media: Media, media_port: int, call=None):
        self.media = media
        self.media_port = media_port
        self.ok = None
        self.transport = None
        # --call: the business's dialog (None when it answers the user's calls).
        self.call = call

    def connection_made(self, transport):
        self.transport = transport
        if self.call is not None:
            self.invite(1, None)

    def datagram_received(self, data, addr):
        first, headers, body = parse(data)
        if first.startswith("SIP/2.0 "):
            if self.call is not None:
                self.response_received(int(first.split(" ")[1]), headers, body)
            return
        method = first.split(" ")[0]
        if method == "INVITE":
            if self.ok is None:
                user_addr, user_key = sdp_of(body)
                self.ok = self.response(headers, 200, "OK", self.sdp(), tag=True)
                self.media.start(user_addr, user_key)
            self.transport.sendto(self.ok, addr)
        elif method == "BYE":
            self.transport.sendto(self.response(headers, 200, "OK", None), addr)
            out({"event": "bye"})

    def sdp(self) -> str:
        """Its offer or answer: SDES with its own key, or plain RTP."""
        if self.media.our_key is None:
            proto, key = "RTP/AVP", []
        else:
            inline = base64.b64encode(self.media.our_key).decode()
            proto, key = "RTP/SAVP", [f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}"]
        return "\r\n".join(
            [
                "v=0",
                "o=pbx 1 1 IN IP4 127.0.0.1",
                "s=-",
                "c=IN IP4 127.0.0.1",
                "t=0 0",
                f"m=audio {self.media_port} {proto} {OPUS_PT} {DTMF_PT}",
                f"a=rtpmap:{OPUS_PT} opus/48000/2",
                f"a=rtpmap:{DTMF_PT} telephone-event/8000",
                *key,
                "a=sendrecv",
                "",
            ]
        )

    def request(self, method: str, uri: str, cseq: int, branch: str, to: str, extra=(), body="") -> bytes:
        c = self.call
        me = f"127.0.0.1:{self.transport.get_extra_info('sockname')[1]}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {me};branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:+{c['business']}@{c['from_host']}>;tag=biz1",
            f"To: {to}",
            f"Call-ID: {c['call_id']}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:+{c['business']}@{me};transport=udp>",
            *extra,
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def invite(self, cseq: int, authorization):
        c = self.call
        extra = [f"Proxy-Authorization: {authorization}"] if authorization else []
        c["branch"] = f"z9hG4bKbiz{cseq}"
        c["cseq"] = cseq
        c["invite"] = self.request("INVITE", c["uri"], cseq, c["branch"], c["to"], extra, c["offer"])
        self.transport.sendto(c["invite"], c["gateway"])

    def response_received(self, status: int, h, body: str):
        c = self.call
        cseq, method = h["cseq"][0].split(" ")
        if method == "BYE":
            if status >= 200:
                out({"event": "bye_ok", "status": status})
            return
        if method != "INVITE" or int(cseq) != c["cseq"]:
            return
        if status == 407 and "challenged" not in c:
            c["challenged"] = True
            # A final non-2xx is ACKed in its transaction (same branch, its To).
            ack = self.request("ACK", c["uri"], int(cseq), c["branch"], h["to"][0])
            self.transport.sendto(ack, c["gateway"])
            out({"event": "challenged"})
            auth = digest(h["proxy-authenticate"][0], c["business"], c["password"], "INVITE", c["uri"])
            self.invite(int(cseq) + 1, auth)
        elif status == 180:
            out({"event": "ringing"})
        elif 200 <= status < 300:
            # ACK every copy (the gateway retransmits until one arrives); start once.
            c["to_tagged"] = h["to"][0]
            c["target"] = re.search(r"<([^>]+)>", h["contact"][0]).group(1) if "contact" in h else c["uri"]
            ack = self.request("ACK", c["target"], int(cseq), f"z9hG4bKack{cseq}", c["to_tagged"])
            self.transport.sendto(ack, c["gateway"])
            if "answered" not in c:
                c["answered"] = True
                user_addr, user_key = sdp_of(body)
                self.media.start(user_addr, user_key)
                out({"event": "answered", "sdp": body})
        elif status >= 300:
            ack = self.request("ACK", c["uri"], int(cseq), c["branch"], h["to"][0])
            self.transport.sendto(ack, c["gateway"])
            out({"event": "refused", "status": status})

    def bye(self):
        c = self.call
        c["cseq"] += 1
        bye = self.request("BYE", c["target"], c["cseq"], f"z9hG4bKbye{c['cseq']}", c["to_tagged"])
        self.transport.sendto(bye, c["gateway"])

    def response(self, h, status, reason, sdp, tag=False) -> bytes:
        to = h["to"][0] + (";tag=pbx1" if tag and ";tag=" not in h["to"][0] else "")
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in h.get("via", [])]
        lines += [f"From: {h['from'][0]}", f"To: {to}", f"Call-ID: {h['call-id'][0]}", f"CSeq: {h['cseq'][0]}"]
        lines.append(f"Contact: <sip:pbx@127.0.0.1:{self.transport.get_extra_info('sockname')[1]}>")
        body = sdp or ""
        if sdp:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["tone", "silent", "wrong-key"], default="tone")
    p.add_argument("--rtp", choices=["sdes", "plain"], default="sdes")
    p.add_argument("--call", metavar="USER_DIGITS", help="call this user through the gateway")
    p.add_argument("--gateway", metavar="HOST:PORT", help="the emulator's SIP gateway (UDP)")
    p.add_argument("--business", metavar="DIGITS", help="the business number calling")
    p.add_argument("--from-host", default="sip.example.com")
    p.add_argument("--password", help="the number's SIP password")
    args = p.parse_args()
    mode = args.mode
    loop = asyncio.get_running_loop()
    if args.rtp == "plain":
        our_key = sending_key = None
    else:
        our_key = os.urandom(30)
        sending_key = os.urandom(30) if mode == "wrong-key" else our_key
    media = Media(mode, our_key, sending_key)
    media_t, _ = await loop.create_datagram_endpoint(lambda: media, local_addr=("127.0.0.1", 0))
    media_port = media_t.get_extra_info("sockname")[1]
    call = None
    if args.call:
        host, _, port = args.gateway.rpartition(":")
        call = {
            "gateway": (host, int(port)),
            "business": args.business,
            "from_host": args.from_host,
            "password": args.password,
            "call_id": f"{os.urandom(6).hex()}@pbx",
            "uri": f"sip:+{args.call}@{args.gateway};transport=udp",
            "to": f"<sip:+{args.call}@wa.meta.vc>",
        }
    sip = Sip(media, media_port, call)
    if call is not None:
        call["offer"] = sip.sdp()
    sip_t, _ = await loop.create_datagram_endpoint(lambda: sip, local_addr=("127.0.0.1", 0))
    out({"event": "ready", "sip_port": sip_t.get_extra_info("sockname")[1], "media_port": media_port})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.strip() == b"stats":
            out(media.stats())
        elif line.strip() == b"bye" and call is not None:
            sip.bye()


if __name__ == "__main__":
    asyncio.run(main())
