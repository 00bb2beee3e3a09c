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

Stdout, one JSON object a line: `{"event": "ready", "sip_port"}` first, then
`{"event": "stats", …}` for each `stats` line written to stdin, and `{"event": "bye"}`
when the emulator hangs up.
"""

import argparse
import array
import asyncio
import base64
import fractions
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


class Sip(asyncio.DatagramProtocol):
    def __init__(self, media: Media, media_port: int):
        self.media = media
        self.media_port = media_port
        self.ok = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        first, headers, body = parse(data)
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
    sip_t, _ = await loop.create_datagram_endpoint(lambda: Sip(media, media_port), local_addr=("127.0.0.1", 0))
    out({"event": "ready", "sip_port": sip_t.get_extra_info("sockname")[1], "media_port": media_port})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.strip() == b"stats":
            out(media.stats())


if __name__ == "__main__":
    asyncio.run(main())
