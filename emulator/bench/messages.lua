-- wrk: POST /v21.0/{phone}/messages with the README's voice_call button and the default
-- bearer token. Every answer must be a 200: wrk reports any other as "Non-2xx", and
-- run.sh refuses a run that has one (an error answer is cheaper and would flatter it).
wrk.method = "POST"
wrk.path = "/v21.0/106540352242922/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer wa-emulator-token"
wrk.body = '{"messaging_product":"whatsapp","to":"16315551234","type":"interactive","interactive":{"type":"voice_call","body":{"text":"Call us on WhatsApp now"},"action":{"name":"voice_call","parameters":{"display_text":"Call Now","ttl_minutes":100,"payload":"P"}}}}'
