"""A pywa 4.5.0 business app, driven by the sdk-tests harness.

It plays the business side of every pywa flow with pywa's own machinery:
- receiving: pywa's FastAPI webhook routes (GET handshake, X-Hub-Signature-256 check,
  typed updates) served by uvicorn; every handler appends one JSON line to --events;
- sending: POST /control/<action> runs one pywa API call and answers its result, or the
  pywa exception class it raised (so the test sees what an integration would see).

Prints `READY http://127.0.0.1:PORT` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import enum
import json
import logging
import socket
import sys
import threading
import traceback

import fastapi
import uvicorn
from pywa import WhatsApp, errors, types, utils
from pywa.types import templates as tpl
from pywa.types.calls import (
    CallDirection,
    CallingSettings,
    CallingSettingsStatus,
    CallPermissions,
    SessionDescription,
)

# An SDP answer as a business media server would give it (the emulator does no media).
SDP_ANSWER = (
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE audio\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:sdkT\r\n"
    "a=ice-pwd:sdkTestsIcePasswordValue0123\r\n"
    "a=fingerprint:sha-256 1B:B6:6B:40:A5:0B:8C:75:0D:8C:CB:90:2F:99:74:1E:26:45:AE:AF:"
    "45:C1:51:60:8F:73:C9:2D:10:6D:8A:88\r\n"
    "a=setup:active\r\n"
    "a=mid:audio\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
)
SDP_OFFER = SDP_ANSWER.replace("a=setup:active", "a=setup:actpass")


@dataclasses.dataclass(slots=True)
class VoiceCallButtonWithPayload(types.VoiceCallButton):
    """pywa's VoiceCallButton has no `payload`; this is the tiny subclass clients.md describes."""

    payload: str | None = None

    def to_dict(self) -> dict:
        d = types.VoiceCallButton.to_dict(self)
        if self.payload is not None:
            d["parameters"]["payload"] = self.payload
        return d


class VoiceCallButtonParams(tpl.BaseParams):
    """Send-time parameters of a template's voice_call button (pywa has no class for them)."""

    comp_name = "VoiceCallButton"

    def __init__(self, *, index: int = 0, ttl_minutes: int | None = None, payload: str | None = None):
        self.index = index
        self.ttl_minutes = ttl_minutes
        self.payload = payload

    def to_dict(self) -> dict:
        params = []
        if self.ttl_minutes is not None:
            params.append({"type": "ttl_minutes", "ttl_minutes": self.ttl_minutes})
        if self.payload is not None:
            params.append({"type": "payload", "payload": self.payload})
        return {"type": "button", "sub_type": "voice_call", "index": self.index, "parameters": params}


def jsonable(obj):
    """Turns pywa result objects into JSON (dataclasses, enums, datetimes)."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime.datetime):
        return int(obj.timestamp())
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not f.name.startswith("_") and f.name != "raw"
        }
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def error_json(e: Exception) -> dict:
    if isinstance(e, errors.WhatsAppError):
        return {
            "class": type(e).__name__,
            "bases": [c.__name__ for c in type(e).__mro__[1:] if c.__module__ == errors.__name__],
            "code": e.code,
            "message": e.message,
            "details": e.details,
            "status_code": e.status_code,
            "fbtrace_id": e.fbtrace_id,
        }
    return {"class": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}


class Events:
    """One JSON line per event, flushed at once so the test can poll the file."""

    def __init__(self, path: str):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, kind: str, **fields) -> None:
        line = json.dumps({"kind": kind, **jsonable(fields)}, ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


class EventLogHandler(logging.Handler):
    """Surfaces pywa's own complaints (dropped or unparsable updates) to the test."""

    def __init__(self, events: Events):
        super().__init__(level=logging.WARNING)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.write(
            "pywa_log",
            level=record.levelname,
            message=record.getMessage(),
            exc=self.format(record) if record.exc_info else None,
        )


def user_json(u) -> dict:
    return {"wa_id": u.wa_id, "user_id": u.bsuid, "name": u.name}


def build(args: argparse.Namespace) -> tuple[fastapi.FastAPI, WhatsApp]:
    events = Events(args.events)
    logging.getLogger("pywa").addHandler(EventLogHandler(events))
    # pywa reports unknown enum values (e.g. a status it does not know) as Python warnings.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(EventLogHandler(events))
    app = fastapi.FastAPI()

    def client(token: str | None = None, server=None) -> WhatsApp:
        kwargs = {}
        if server is not None:
            kwargs = dict(
                server=server,
                verify_token=args.verify_token,
                app_secret=args.app_secret,
                webhook_endpoint="/webhook",
                # pywa drops updates for other phone numbers unless told not to.
                filter_updates=args.filter_updates,
            )
        # Without --graph-version pywa uses its own default (26.0 in 4.5.0).
        version = args.graph_version or str(utils.Version.GRAPH_API)
        wa = WhatsApp(
            phone_id=args.phone_id,
            token=token or args.token,
            waba_id=args.waba_id,
            api_version=version,
            **kwargs,
        )
        # pywa has no base-URL option: point its httpx session at the emulator.
        wa.api._session.base_url = f"{args.base.rstrip('/')}/v{version}"
        return wa

    wa = client(server=app)
    answer = SessionDescription(sdp_type="answer", sdp=SDP_ANSWER)

    @wa.on_raw_update
    def on_raw(_: WhatsApp, u: types.RawUpdate) -> None:
        events.write("raw", field=u.field, waba_id=u.id, body=dict(u))

    @wa.on_message
    def on_message(_: WhatsApp, m: types.Message) -> None:
        events.write("Message", id=m.id, type=m.type, text=m.text, user=user_json(m.from_user))

    @wa.on_message_status
    def on_status(_: WhatsApp, s: types.MessageStatus) -> None:
        events.write(
            "MessageStatus",
            id=s.id,
            status=s.status,
            tracker=s.tracker,
            user=user_json(s.from_user),
            error=error_json(s.error) if s.error else None,
        )

    @wa.on_call_connect
    def on_connect(_: WhatsApp, c: types.CallConnect) -> None:
        call = c.raw["entry"][0]["changes"][0]["value"]["calls"][0]
        events.write(
            "CallConnect",
            id=c.id,
            event=c.event,
            direction=c.direction,
            sdp_type=c.session.sdp_type if c.session else None,
            user=user_json(c.from_user),
            phone_number_id=c.metadata.phone_number_id,
            # No typed field for these in pywa: read them from the raw call object.
            cta_payload=call.get("cta_payload"),
            deeplink_payload=call.get("deeplink_payload"),
            has_cta_payload="cta_payload" in call,
            has_deeplink_payload="deeplink_payload" in call,
        )
        if c.direction != CallDirection.USER_INITIATED or not args.auto_accept:
            return
        # What a real app does with an incoming call: pre-accept, then accept.
        try:
            pre = c.pre_accept(sdp=answer)
            acc = c.accept(sdp=answer)
            events.write("Accepted", id=c.id, pre_accept=bool(pre), accept=bool(acc))
        except Exception as e:  # noqa: BLE001 - the test reports whatever pywa raised
            events.write("AcceptFailed", id=c.id, error=error_json(e))

    @wa.on_call_terminate
    def on_terminate(_: WhatsApp, c: types.CallTerminate) -> None:
        call = c.raw["entry"][0]["changes"][0]["value"]["calls"][0]
        events.write(
            "CallTerminate",
            id=c.id,
            event=c.event,
            direction=c.direction,
            status=c.status,
            duration=c.duration,
            start_time=c.start_time,
            end_time=c.end_time,
            tracker=c.tracker,
            user=user_json(c.from_user),
            error=error_json(c.error) if c.error else None,
            cta_payload=call.get("cta_payload"),
            deeplink_payload=call.get("deeplink_payload"),
        )

    @wa.on_call_status
    def on_call_status(_: WhatsApp, s: types.CallStatus) -> None:
        events.write("CallStatus", id=s.id, status=s.status, type=s.type, tracker=s.tracker, user=user_json(s.from_user))

    @wa.on_call_permission_update
    def on_permission(_: WhatsApp, p: types.CallPermissionUpdate) -> None:
        events.write(
            "CallPermissionUpdate",
            id=p.id,
            response=p.response,
            response_source=p.response_source,
            expiration_timestamp=p.expiration_timestamp,
            reply_to=p.reply_to_message.id if p.reply_to_message else None,
            user=user_json(p.from_user),
        )

    @wa.on_template_status_update
    def on_template_status(_: WhatsApp, u) -> None:
        events.write("TemplateStatusUpdate", template_id=u.template_id, name=u.template_name, new_status=u.new_status)

    def act(action: str, a: dict):
        if action == "send_text":
            return wa.send_message(to=a["to"], text=a["text"])
        if action == "send_voice_call_button":
            ttl = a.get("ttl_minutes")
            if a.get("ttl_days") is not None:
                # pywa's documented style: a timedelta, which it serialises as a float (4320.0).
                ttl = datetime.timedelta(days=a["ttl_days"])
            return wa.send_message(
                to=a["to"],
                text=a["text"],
                buttons=VoiceCallButtonWithPayload(title=a.get("title"), ttl_minutes=ttl, payload=a.get("payload")),
            )
        if action == "create_template":
            return wa.create_template(
                template=tpl.Template(
                    name=a["name"],
                    language=tpl.TemplateLanguage(a.get("language", "en_US")),
                    category=tpl.TemplateCategory(a.get("category", "MARKETING")),
                    components=[
                        tpl.BodyText(text=a["body"]),
                        tpl.Buttons(buttons=[tpl.VoiceCallButton(text=a["button_text"])]),
                    ],
                )
            )
        if action == "get_template":
            return wa.get_template(template_id=a["id"])
        if action == "send_template":
            params = None
            if "ttl_minutes" in a or "payload" in a:
                params = [VoiceCallButtonParams(ttl_minutes=a.get("ttl_minutes"), payload=a.get("payload"))]
            return wa.send_template(
                to=a["to"],
                name=a["name"],
                language=tpl.TemplateLanguage(a.get("language", "en_US")),
                params=params,
            )
        if action == "request_call_permission":
            return wa.send_message(to=a["to"], text=a["text"], buttons=types.CallPermissionRequestButton())
        if action == "get_call_permissions":
            # pywa 4.5.0's WhatsApp.get_call_permissions() passes only one of the two
            # required arguments of GraphAPI.get_call_permissions() and raises TypeError;
            # its lower level, as clients.md lists it, works.
            return CallPermissions.from_dict(
                wa.api.get_call_permissions(phone_id=wa.phone_id, user_wa_id=a["wa_id"], recipient=None)
            )
        if action == "initiate_call":
            return wa.initiate_call(
                to=a["to"], sdp=SessionDescription(sdp_type="offer", sdp=SDP_OFFER), tracker=a.get("tracker")
            )
        if action == "terminate_call":
            return wa.terminate_call(call_id=a["call_id"])
        if action == "reject_call":
            return wa.reject_call(call_id=a["call_id"])
        if action == "set_calling":
            return wa.update_business_phone_number_settings(
                calling=CallingSettings(status=CallingSettingsStatus(a["status"]))
            )
        if action == "get_settings":
            return wa.get_business_phone_number_settings()
        if action == "send_text_with_token":
            # A second client, as an app holding a wrong or revoked token would be.
            return client(token=a["token"]).send_message(to=a["to"], text=a["text"])
        raise ValueError(f"unknown action {action!r}")

    @app.post("/control/{action}")
    def control(action: str, body: dict = fastapi.Body(default={})) -> dict:
        try:
            return {"ok": True, "result": jsonable(act(action, body))}
        except Exception as e:  # noqa: BLE001 - returned to the test, which asserts on it
            return {"ok": False, "error": error_json(e)}

    return app, wa


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--base", required=True, help="emulator base URL, e.g. http://127.0.0.1:4004")
    p.add_argument("--events", required=True, help="file to append one JSON line per event to")
    p.add_argument("--phone-id", required=True)
    p.add_argument("--waba-id", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--app-secret", required=True)
    p.add_argument("--verify-token", required=True)
    p.add_argument("--graph-version", help="e.g. 21.0 (default: pywa's own default)")
    p.add_argument(
        "--no-auto-accept",
        dest="auto_accept",
        action="store_false",
        help="only record user-initiated calls (replayed fixtures name calls the emulator never had)",
    )
    p.add_argument(
        "--all-numbers",
        dest="filter_updates",
        action="store_false",
        help="handle updates for every business number of the WABA, not only --phone-id's",
    )
    args = p.parse_args()

    app, _ = build(args)
    # Bind first so the port is known before uvicorn starts (port 0 = any free port).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            threading.Event().wait(0.02)
        print(f"READY http://127.0.0.1:{port}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
