//! Meta's OpenAPI description as a conformance oracle.
//!
//! `emulator/tests/openapi/operations.json` is derived from Meta's
//! `business-messaging-api_v23.0.yaml` (provenance and licence in the README there): for
//! the `/messages`, `/calls`, `/call_permissions`, `/settings` and `/message_templates`
//! operations (and `GET /{template-id}`) it holds every request example and every declared
//! response with its schema, `$ref`s resolved. This test sends every example to the
//! emulator, with its placeholders adapted to the default tenant ([`FILL`] and the few
//! per-case substitutions below), and validates every answer against the schema the
//! operation declares for that HTTP status (the common Graph `ErrorResponse` when the
//! operation declares none, as `sendMessage` declares only 200).
//!
//! The description contradicts itself and `cloud-api.md` in places. There `cloud-api.md`
//! wins, and every such place is a row of [`DEVIATIONS`] saying what the spec says, what
//! the reference says and why. Every refusal of an example is a mismatch too (the spec
//! documents each example as succeeding), so each refusal needs its row. A mismatch
//! that no row names fails the test, and so does a row that no case produced: the table
//! is the complete, current list. [`UNSEEN`] names the contradictions the schemas cannot
//! show (renamed keys, example values) and checks the reference's side on one answer.

use super::harness::*;
use super::json_schema::validate;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const OPERATIONS: &str = include_str!("../openapi/operations.json");

/// The default tenant's second number (+44): business-initiated calling exists there.
const UK_PHONE: &str = "110972043181256";
/// The user the spec's `/calls` and `/call_permissions` examples name.
const CALLEE: &str = "14085551234";

/// Placeholders the spec's examples carry, and what stands in for them here.
const FILL: &[(&str, &str)] = &[
    ("{{Recipient-Phone-Number}}", USER),
    ("{{Recipient-WA-Phone-Number}}", USER),
    // `template-name` is a placeholder that is not even a valid name (a template name is
    // lowercase letters, digits and underscores: cloud-api.md §2.1).
    ("template-name", "template_name"),
    ("language-and-locale-code", "en_US"),
];

/// One place where the emulator, following `cloud-api.md`, answers other than the spec
/// says.
struct Deviation {
    /// `operationId`.
    operation: &'static str,
    /// The case (a request example's name, or a label for the extra cases); `*` = all.
    case: &'static str,
    /// JSON pointer into the response (array indices written `*`); `""` for a refusal.
    at: &'static str,
    /// A piece of the validator's message that identifies the mismatch.
    mismatch: &'static str,
    /// What the spec says, what `cloud-api.md` says, and so what the emulator does.
    why: &'static str,
}

const DEVIATIONS: &[Deviation] = &[
    // ---- /settings -----------------------------------------------------------------
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "*",
        at: "/calling/status",
        mismatch: "\"ENABLED\" is not one of",
        why: "spec: enum enabled|disabled (lowercase); cloud-api.md §7.1/§7.2: ENABLED|DISABLED. Uppercase.",
    },
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "*",
        at: "/calling/callback_permission_status",
        mismatch: "is not one of [\"enabled\",\"disabled\"]",
        why: "spec: lowercase; cloud-api.md §7.1/§7.2: ENABLED|DISABLED. Uppercase.",
    },
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "*",
        at: "/calling/call_icon_visibility",
        mismatch: "\"DEFAULT\" is not one of [\"visible\",\"hidden\"]",
        why: "spec: visible|hidden; cloud-api.md §7.1/§15: DEFAULT|DISABLE_ALL (also DISABLE ALL, HIDE_IN_CHAT).",
    },
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "*",
        at: "/calling/sip/status",
        mismatch: "is not one of [\"enabled\",\"disabled\"]",
        why: "spec: lowercase; cloud-api.md §7.2/§8.1: sip.status ENABLED|DISABLED. Uppercase.",
    },
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/call_hours/status",
        mismatch: "\"ENABLED\" is not one of [\"enabled\",\"disabled\"]",
        why: "spec: lowercase; cloud-api.md §7.1/§7.2: call_hours.status ENABLED|DISABLED. Uppercase.",
    },
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/srtp_key_exchange_protocol",
        mismatch: "\"DTLS\" is not one of [\"DTLS-SRTP\",\"SDES-SRTP\"]",
        why: "spec: DTLS-SRTP|SDES-SRTP; cloud-api.md §7.1: DTLS|SDES. The reference's spelling.",
    },
    Deviation {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/sip/servers/*/app_id",
        mismatch: "expected string, got integer",
        why: "spec: app_id a string; cloud-api.md §7.2 GET example: \"app_id\": 1234567890, a number.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Enable calling with video",
        at: "",
        mismatch: "refused: HTTP 400 (#131009)",
        why: "spec: status \"enabled\", call_icon_visibility \"visible\"; cloud-api.md §7.1: ENABLED|DISABLED and DEFAULT|DISABLE_ALL, so the lowercase spelling is refused naming the allowed values.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Disable calling",
        at: "",
        mismatch: "refused: HTTP 400 (#131009)",
        why: "spec: status \"disabled\"; cloud-api.md §7.1: ENABLED|DISABLED.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Enable SIP calling",
        at: "",
        mismatch: "refused: HTTP 400 (#131009)",
        why: "spec: lowercase statuses, srtp \"DTLS-SRTP\", sip enabled without servers; cloud-api.md §7.1/§8.1: uppercase, DTLS|SDES, at least one server while ENABLED.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Enable payload encryption",
        at: "",
        mismatch: "refused: HTTP 400 (#100)",
        why: "not a contradiction: payload_encryption is outside what the emulator emulates (PRODUCT.md §3: the calling object; cloud-api.md documents no other section), refused with a details text that says so.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Disable payload encryption",
        at: "",
        mismatch: "refused: HTTP 400 (#100)",
        why: "as for Enable payload encryption: not emulated, refused saying so.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Enable user identity change",
        at: "",
        mismatch: "refused: HTTP 400 (#100)",
        why: "as for Enable payload encryption: user_identity_change is not emulated, refused saying so.",
    },
    Deviation {
        operation: "updatePhoneNumberSettings",
        case: "Configure data storage",
        at: "",
        mismatch: "refused: HTTP 400 (#100)",
        why: "as for Enable payload encryption: storage_configuration cannot be set (GET reports the default), refused saying so. The spec contradicts itself here too: POST {enabled, region} vs GET {status, data_localization_region}.",
    },
    // ---- /call_permissions ---------------------------------------------------------
    Deviation {
        operation: "checkCallPermissions",
        case: "*",
        at: "/permission/status",
        mismatch: "is not one of [\"granted\",\"pending\",\"denied\",\"expired\"]",
        why: "spec: granted|pending|denied|expired; cloud-api.md §6.4: no_permission|temporary|permanent.",
    },
    Deviation {
        operation: "checkCallPermissions",
        case: "user_wa_id example",
        at: "",
        mismatch: "refused: HTTP 400 (#138013)",
        why: "tenant, not spec: the default number is +1, without business-initiated calling and so without call permissions (cloud-api.md §5.1, §6.5); the example runs again from the UK number.",
    },
    Deviation {
        operation: "checkCallPermissions",
        case: "101 requests in one second",
        at: "",
        mismatch: "refused: HTTP 429 (#613)",
        why: "spec: the 429 example carries code 4 (API Too Many Calls); cloud-api.md §5.4/§6.4: 613 with HTTP 429 past 100 requests/s.",
    },
    // ---- /calls ---------------------------------------------------------------------
    Deviation {
        operation: "manageCalls",
        case: "*",
        at: "",
        mismatch: "matches 2 of the 2 oneOf branches",
        why: "spec defect: the 200 schema is a oneOf of two object schemas with no required keys, so every object matches both and no answer can satisfy it; each branch is checked, the ambiguity is named here.",
    },
    Deviation {
        operation: "manageCalls",
        case: "Connect Call",
        at: "",
        mismatch: "refused: HTTP 400 (#138013)",
        why: "tenant, not spec: the default number is +1, where business-initiated calling does not exist (cloud-api.md §5.1 → 138013); the example runs again from the UK number.",
    },
    Deviation {
        operation: "manageCalls",
        case: "Accept Call",
        at: "",
        mismatch: "refused: HTTP 400 (#131008)",
        why: "spec: accept addresses the call by `to`; cloud-api.md §5.2: by call_id (required, 131008 without it). Sent again by call_id.",
    },
    Deviation {
        operation: "manageCalls",
        case: "Reject Call",
        at: "",
        mismatch: "refused: HTTP 400 (#131008)",
        why: "spec: reject addresses the call by `to`; cloud-api.md §5.2: by call_id. Sent again by call_id.",
    },
    // ---- /messages ------------------------------------------------------------------
    Deviation {
        operation: "sendMessage",
        case: "Send Reply to List Message",
        at: "",
        mismatch: "refused: HTTP 400 (#131008)",
        why: "spec defect: the example has no `type` (its own request schema requires one, and the same list message elsewhere says \"interactive\"); a message without `type` is text (Meta's default, which the \"Send Text Message with Preview URL\" example relies on), so text.body is missing.",
    },
    // ---- /message_templates ---------------------------------------------------------
    Deviation {
        operation: "createAuthenticationTemplateWOtpCopyCodeButton",
        case: "Create catalog template",
        at: "",
        mismatch: "refused: HTTP 400 (#100)",
        why: "spec defect: this example is a copy of the one-tap autofill example (same name and language, AUTHENTICATION, no catalog), so it repeats a template that exists; a name is unique per language (cloud-api.md §2.1).",
    },
];

/// A contradiction the schemas cannot show (they declare no `additionalProperties: false`
/// and no fixed values): the spec's examples or property names say one thing,
/// `cloud-api.md` another. Each row is checked on the answer of one case: the value at
/// `at` must be what the reference says.
struct Unseen {
    operation: &'static str,
    case: &'static str,
    /// JSON pointer into the answer.
    at: &'static str,
    /// What the answer holds there, as the reference says; `None`: the key is absent.
    reference: Option<&'static str>,
    why: &'static str,
}

const UNSEEN: &[Unseen] = &[
    Unseen {
        operation: "checkCallPermissions",
        case: "user_wa_id example, from the UK number",
        at: "/actions/0/limits/0/time_period",
        reference: Some("\"PT24H\""),
        why: "spec examples: time_period \"24h\"; cloud-api.md §6.4: ISO 8601 durations PT24H and P7D.",
    },
    Unseen {
        operation: "checkCallPermissions",
        case: "user_wa_id example, from the UK number",
        at: "/actions/0/limits/1/time_period",
        reference: Some("\"P7D\""),
        why: "as above: the weekly permission-request limit is P7D (cloud-api.md §6.4).",
    },
    Unseen {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/call_hours/timezone_id",
        reference: Some("\"America/Manaus\""),
        why: "spec: call_hours {status, timezone, day_of_week_start}; cloud-api.md §7.2: {status, timezone_id, weekly_operating_hours, holiday_schedule}.",
    },
    Unseen {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/call_hours/timezone",
        reference: None,
        why: "as above: the reference's key is timezone_id, not timezone.",
    },
    Unseen {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/sip/servers/0/password",
        reference: None,
        why: "spec: servers[].password; cloud-api.md §7.2/§8.1: sip_user_password, only with include_sip_credentials=true.",
    },
    Unseen {
        operation: "getPhoneNumberSettings",
        case: "after the cloud-api.md §7.1 example",
        at: "/calling/audio/additional_codecs",
        reference: Some("[\"PCMA\",\"PCMU\"]"),
        why: "spec: audio {status}; cloud-api.md §7.1/§7.2: audio {additional_codecs} (Opus always on).",
    },
    Unseen {
        operation: "manageCalls",
        case: "Terminate Call",
        at: "",
        reference: Some("{\"messaging_product\":\"whatsapp\",\"success\":true}"),
        why: "spec example: {\"success\": true}; cloud-api.md §5.2/§15: the two-key form of the reference tables.",
    },
];

/// A mismatch between an answer and the spec, as the test saw it.
#[derive(Debug, Clone)]
struct Observed {
    operation: String,
    case: String,
    at: String,
    what: String,
}

/// Replaces every string equal to a placeholder, anywhere in `v`.
fn fill(v: &mut Value, subs: &[(&str, &str)]) {
    match v {
        Value::String(s) => {
            if let Some((_, to)) = subs.iter().find(|(from, _)| from == s) {
                *s = (*to).to_owned();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill(x, subs)),
        Value::Object(m) => m.values_mut().for_each(|x| fill(x, subs)),
        _ => {}
    }
}

/// The derived description, the mismatches seen and the examples sent.
struct Oracle {
    spec: Value,
    observed: Vec<Observed>,
    sent: BTreeSet<(String, String)>,
    /// `(operationId, case, answer)` of every request checked.
    answers: Vec<(String, String, Value)>,
}

impl Oracle {
    fn new() -> Self {
        Self {
            spec: serde_json::from_str(OPERATIONS).expect("operations.json is JSON"),
            observed: Vec::new(),
            sent: BTreeSet::new(),
            answers: Vec::new(),
        }
    }

    fn operation(&self, id: &str) -> &Value {
        self.spec["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["operation_id"] == id)
            .unwrap_or_else(|| panic!("operations.json has no operation {id}"))
    }

    /// The request example `name` of `operation`, with [`FILL`] and `subs` applied.
    fn example(&mut self, operation: &str, name: &str, subs: &[(&str, &str)]) -> Value {
        let mut body = self.operation(operation)["request_examples"][name].clone();
        assert!(
            !body.is_null(),
            "{operation} has no request example {name:?}"
        );
        fill(&mut body, FILL);
        fill(&mut body, subs);
        self.sent.insert((operation.to_owned(), name.to_owned()));
        body
    }

    /// Sends a request and checks its answer against `operation`'s declared responses.
    async fn send(
        &mut self,
        emu: &Emu,
        operation: &str,
        case: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let op = self.operation(operation).clone();
        assert_eq!(
            op["method"], method,
            "{operation} is a {} operation",
            op["method"]
        );
        let (status, answer) = emu.graph(method, path, body).await;
        self.check(&op, case, status, &answer);
        answer
    }

    fn check(&mut self, op: &Value, case: &str, status: u16, answer: &Value) {
        let operation = op["operation_id"].as_str().unwrap();
        self.answers
            .push((operation.to_owned(), case.to_owned(), answer.clone()));
        let mut push = |at: &str, what: String| {
            self.observed.push(Observed {
                operation: operation.to_owned(),
                case: case.to_owned(),
                at: at.to_owned(),
                what,
            })
        };
        let declared = &op["responses"][status.to_string()];
        if status >= 300 {
            let code = &answer["error"]["code"];
            let details = answer["error"]["error_data"]["details"]
                .as_str()
                .unwrap_or("");
            let example_codes: Vec<&Value> = declared["examples"]
                .as_object()
                .into_iter()
                .flat_map(|e| e.values())
                .map(|e| &e["error"]["code"])
                .collect();
            let note = if !example_codes.is_empty() && !example_codes.contains(&code) {
                let codes = Value::Array(example_codes.into_iter().cloned().collect());
                format!(" (the declared {status} examples use code {codes})")
            } else {
                String::new()
            };
            push(
                "",
                format!("refused: HTTP {status} (#{code}){note}: {details}"),
            );
        }
        let schema = if declared.is_object() {
            &declared["schema"]
        } else if status >= 400 {
            &self.spec["graph_error"]
        } else {
            push("", format!("HTTP {status} is not a declared response"));
            return;
        };
        let mut errs = Vec::new();
        validate(schema, answer, "", &mut errs);
        for (at, what) in errs {
            push(&at, format!("{what} (answer: {answer})"));
        }
    }

    /// Every example sent, every mismatch named, every row of the table still needed.
    fn finish(self) {
        let mut failures = Vec::new();
        for op in self.spec["operations"].as_array().unwrap() {
            let id = op["operation_id"].as_str().unwrap();
            for name in op["request_examples"].as_object().unwrap().keys() {
                if !self.sent.contains(&(id.to_owned(), name.clone())) {
                    failures.push(format!("{id}: request example {name:?} was never sent"));
                }
            }
        }
        let names = |d: &Deviation, o: &Observed| {
            d.operation == o.operation
                && (d.case == "*" || d.case == o.case)
                && d.at == o.at
                && o.what.contains(d.mismatch)
        };
        for o in &self.observed {
            if !DEVIATIONS.iter().any(|d| names(d, o)) {
                failures.push(format!(
                    "{} / {:?}: {} {} — not in DEVIATIONS",
                    o.operation, o.case, o.at, o.what
                ));
            }
        }
        for d in DEVIATIONS {
            if !self.observed.iter().any(|o| names(d, o)) {
                failures.push(format!(
                    "DEVIATIONS row no case produced (stale?): {} / {:?} at {:?} ({}); it said: {}",
                    d.operation, d.case, d.at, d.mismatch, d.why
                ));
            }
        }
        for u in UNSEEN {
            let Some((_, _, answer)) = self
                .answers
                .iter()
                .find(|(op, case, _)| op == u.operation && case == u.case)
            else {
                failures.push(format!(
                    "UNSEEN row names no case that ran: {} / {:?}",
                    u.operation, u.case
                ));
                continue;
            };
            let got = answer.pointer(u.at);
            let expected: Option<Value> = u.reference.map(|r| serde_json::from_str(r).unwrap());
            if got != expected.as_ref() {
                failures.push(format!(
                    "{} / {:?} at {:?}: expected {} as cloud-api.md says, got {} ({}); answer: {answer}",
                    u.operation,
                    u.case,
                    u.at,
                    u.reference.unwrap_or("no such key"),
                    got.map_or("no such key".to_owned(), Value::to_string),
                    u.why
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} case(s) sent; {} problem(s):\n{}",
            self.answers.len(),
            failures.len(),
            failures.join("\n")
        );
    }
}

async fn setup_ok(emu: &Emu, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = emu.graph(method, path, Some(body)).await;
    assert_eq!(status, 200, "setup {method} {path}: {v}");
    v
}

/// A template the message examples name, created through the Graph API (approved at once).
async fn template(emu: &Emu, name: &str, body_text: &str) {
    setup_ok(
        emu,
        "POST",
        &format!("/{WABA}/message_templates"),
        json!({"name": name, "language": "en_US", "category": "UTILITY",
               "components": [{"type": "BODY", "text": body_text}]}),
    )
    .await;
}

/// Templates (creation, list, lookup, deletion) and every `/messages` example.
async fn templates_and_messages(o: &mut Oracle) {
    let emu = Emu::start().await;
    const CREATE: &str = "createAuthenticationTemplateWOtpCopyCodeButton";
    // The creation examples first: the flow templates are sent by a message example.
    let names: Vec<String> = o.operation(CREATE)["request_examples"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut ids = std::collections::BTreeMap::new();
    for name in &names {
        let template_name = match name.as_str() {
            "Create Flow Template Message by Flow JSON" => "flow_offer_by_json",
            "Create Flow Template Message by ID" => "flow_offer_by_id",
            "Create Flow Template Message by Name" => "flow_offer_by_name",
            _ => "<TEMPLATE_NAME>",
        };
        let body = o.example(CREATE, name, &[("<TEMPLATE_NAME>", template_name)]);
        let path = format!("/{WABA}/message_templates");
        let v = o
            .send(&emu, CREATE, name, "POST", &path, Some(body.clone()))
            .await;
        if let Some(id) = v["id"].as_str() {
            ids.insert(body["name"].as_str().unwrap().to_owned(), id.to_owned());
        }
    }

    // What the message examples send: templates by these names, with as many body
    // parameters as the examples give.
    template(&emu, "intro_catalog_offer", "Now shop for your favourite products right here on WhatsApp! Get Rs {{1}} off on all orders above {{2}}Rs! Valid for your first {{3}} orders placed on WhatsApp!").await;
    template(
        &emu,
        "template_name",
        "Hi {{1}}, your total is {{2}}, due {{3}}.",
    )
    .await;
    template(
        &emu,
        "sample_issue_resolution",
        "Hi {{1}}, were we able to solve the issue that you were facing?",
    )
    .await;
    template(&emu, "hello_world", "Welcome and congratulations!! This message demonstrates your ability to send a message notification from WhatsApp Business Platform's Cloud API. Thank you for taking the time to test with us.").await;
    // The read receipt example marks an inbound message read.
    let inbound = emu
        .ok(
            "POST",
            &format!("/users/{USER}/messages"),
            json!({"text": "hello"}),
        )
        .await;
    let inbound = inbound["message_id"].as_str().unwrap().to_owned();

    const SEND: &str = "sendMessage";
    let names: Vec<String> = o.operation(SEND)["request_examples"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for name in &names {
        let body = o.example(
            SEND,
            name,
            &[
                ("<TEMPLATE_NAME>", "flow_offer_by_id"),
                (
                    "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA=",
                    &inbound,
                ),
            ],
        );
        o.send(
            &emu,
            SEND,
            name,
            "POST",
            &format!("/{PHONE}/messages"),
            Some(body),
        )
        .await;
    }

    // Lookups and deletion, with the query examples' placeholders adapted.
    const LIST: &str = "getTemplateByNameDefaultFields";
    o.send(
        &emu,
        LIST,
        "every template",
        "GET",
        &format!("/{WABA}/message_templates"),
        None,
    )
    .await;
    o.send(
        &emu,
        LIST,
        "name=<TEMPLATE_NAME>",
        "GET",
        &format!("/{WABA}/message_templates?name=seasonal_promotion_text_only"),
        None,
    )
    .await;
    let id = ids
        .get("seasonal_promotion_text_only")
        .expect("the quick-reply template example was created")
        .clone();
    o.send(
        &emu,
        "getTemplateByIdDefaultFields",
        "a created template",
        "GET",
        &format!("/{id}"),
        None,
    )
    .await;
    o.send(
        &emu,
        "deleteTemplateByName",
        "name=<TEMPLATE_NAME>&hsm_id=<HSM_ID>",
        "DELETE",
        &format!("/{WABA}/message_templates?name=seasonal_promotion_text_only&hsm_id={id}"),
        None,
    )
    .await;
}

/// `/call_permissions` and `/calls`.
async fn calls_and_permissions(o: &mut Oracle) {
    let emu = Emu::start().await;
    const PERMS: &str = "checkCallPermissions";
    let query = |phone: &str| format!("/{phone}/call_permissions?user_wa_id={CALLEE}");
    // The example as written, on the +1 number, then from the UK number.
    o.send(
        &emu,
        PERMS,
        "user_wa_id example",
        "GET",
        &query(PHONE),
        None,
    )
    .await;
    o.send(
        &emu,
        PERMS,
        "user_wa_id example, from the UK number",
        "GET",
        &query(UK_PHONE),
        None,
    )
    .await;
    // A temporary, then a permanent permission on the UK number (+1 numbers have no
    // business-initiated calling, so no permissions either: cloud-api.md §6.5). From the UK
    // number the user is written +1…: without `+`, `to` gets the business number's
    // calling code (cloud-api.md, general facts).
    let request = json!({"messaging_product": "whatsapp", "to": format!("+{CALLEE}"), "type": "interactive",
        "interactive": {"type": "call_permission_request", "action": {"name": "call_permission_request"},
                        "body": {"text": "May we call you?"}}});
    let sent = setup_ok(&emu, "POST", &format!("/{UK_PHONE}/messages"), request).await;
    emu.ok(
        "POST",
        &format!("/users/{CALLEE}/permission-reply"),
        json!({"response": "accept", "message_id": sent["messages"][0]["id"], "phone_number_id": UK_PHONE}),
    )
    .await;
    o.send(
        &emu,
        PERMS,
        "temporary permission",
        "GET",
        &query(UK_PHONE),
        None,
    )
    .await;
    emu.ok(
        "POST",
        &format!("/users/{CALLEE}/permission-reply"),
        json!({"response": "accept", "permanent": true, "phone_number_id": UK_PHONE}),
    )
    .await;
    o.send(
        &emu,
        PERMS,
        "permanent permission",
        "GET",
        &query(UK_PHONE),
        None,
    )
    .await;

    const CALLS: &str = "manageCalls";
    let calls = |phone: &str| format!("/{phone}/calls");
    // Business-initiated: refused on the +1 number, connected from the UK number (with the
    // callee written +1…, as above).
    let connect = o.example(CALLS, "Connect Call", &[]);
    let mut from_uk = connect.clone();
    from_uk["to"] = format!("+{CALLEE}").into();
    o.send(
        &emu,
        CALLS,
        "Connect Call",
        "POST",
        &calls(PHONE),
        Some(connect.clone()),
    )
    .await;
    let v = o
        .send(
            &emu,
            CALLS,
            "Connect Call, from the UK number",
            "POST",
            &calls(UK_PHONE),
            Some(from_uk),
        )
        .await;
    let call_id = v["calls"][0]["id"].as_str().expect("a call id").to_owned();
    let terminate = o.example(
        CALLS,
        "Terminate Call",
        &[("wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA", &call_id)],
    );
    o.send(
        &emu,
        CALLS,
        "Terminate Call",
        "POST",
        &calls(UK_PHONE),
        Some(terminate),
    )
    .await;

    // Accept and reject: as written (by `to`), then by call_id on a user-initiated call.
    for (name, label) in [
        ("Accept Call", "Accept Call, by call_id"),
        ("Reject Call", "Reject Call, by call_id"),
    ] {
        let body = o.example(CALLS, name, &[]);
        o.send(&emu, CALLS, name, "POST", &calls(PHONE), Some(body.clone()))
            .await;
        let started = emu
            .ok(
                "POST",
                &format!("/users/{CALLEE}/call"),
                json!({"phone_number_id": PHONE}),
            )
            .await;
        let id = started["call_id"].as_str().unwrap();
        let mut by_id = body;
        let m = by_id.as_object_mut().unwrap();
        m.remove("to");
        m.insert("call_id".into(), id.into());
        o.send(&emu, CALLS, label, "POST", &calls(PHONE), Some(by_id))
            .await;
        if name == "Accept Call" {
            emu.ok("POST", &format!("/calls/{id}/hangup"), Value::Null)
                .await;
        }
    }

    // Past 100 requests in one second (the virtual clock stands still).
    for _ in 0..100 {
        emu.graph("GET", &query(UK_PHONE), None).await;
    }
    o.send(
        &emu,
        PERMS,
        "101 requests in one second",
        "GET",
        &query(UK_PHONE),
        None,
    )
    .await;
}

/// `/settings`: the POST examples, then GET before and after the reference's own example.
async fn settings(o: &mut Oracle) {
    let emu = Emu::start().await;
    const GET: &str = "getPhoneNumberSettings";
    const POST: &str = "updatePhoneNumberSettings";
    let path = format!("/{PHONE}/settings");
    o.send(&emu, GET, "default settings", "GET", &path, None)
        .await;
    let names: Vec<String> = o.operation(POST)["request_examples"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for name in &names {
        let body = o.example(POST, name, &[]);
        o.send(&emu, POST, name, "POST", &path, Some(body)).await;
    }
    // cloud-api.md §7.1's example, with a holiday next year on the emulator's clock.
    let clock = emu.ok("GET", "/clock", Value::Null).await;
    let now = chrono::DateTime::from_timestamp(clock["now"].as_i64().unwrap(), 0).unwrap();
    let year = chrono::Datelike::year(&now) + 1;
    let reference = json!({"calling": {
        "status": "ENABLED", "call_icon_visibility": "DEFAULT",
        "call_icons": {"restrict_to_user_countries": ["US", "BR"]},
        "call_hours": {"status": "ENABLED", "timezone_id": "America/Manaus",
            "weekly_operating_hours": [
                {"day_of_week": "MONDAY", "open_time": "0400", "close_time": "1020"},
                {"day_of_week": "TUESDAY", "open_time": "0108", "close_time": "1020"}],
            "holiday_schedule": [{"date": format!("{year}-01-01"), "start_time": "0000", "end_time": "2359"}]},
        "callback_permission_status": "ENABLED",
        "sip": {"status": "DISABLED", "servers": [{"hostname": "sip.example.com", "port": 5061,
            "request_uri_user_params": {"tgrp": "wacall", "trunk-context": "byoc.example.com"}}]},
        "srtp_key_exchange_protocol": "DTLS",
        "audio": {"additional_codecs": ["PCMA", "PCMU"]}}});
    o.send(
        &emu,
        POST,
        "the cloud-api.md §7.1 example",
        "POST",
        &path,
        Some(reference),
    )
    .await;
    o.send(
        &emu,
        GET,
        "after the cloud-api.md §7.1 example",
        "GET",
        &format!("{path}?include_sip_credentials=true"),
        None,
    )
    .await;
}

#[tokio::test]
async fn every_spec_example_is_answered_as_the_spec_declares_or_as_a_named_deviation() {
    let mut o = Oracle::new();
    templates_and_messages(&mut o).await;
    calls_and_permissions(&mut o).await;
    settings(&mut o).await;
    o.finish();
}

/// The spec's contacts examples send an array of cards; the emulator took only an object.
#[tokio::test]
async fn contacts_messages_take_an_array_of_cards_and_refuse_anything_else() {
    let emu = Emu::start().await;
    let card = json!({"name": {"formatted_name": "John Smith", "first_name": "John"},
                      "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME"}]});
    let send = |contacts: Value| json!({"messaging_product": "whatsapp", "to": USER, "type": "contacts", "contacts": contacts});
    let path = format!("/{PHONE}/messages");
    let (status, v) = emu.graph("POST", &path, Some(send(json!([card])))).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["messages"][0]["id"].as_str().is_some(), "{v}");
    for (contacts, code, says) in [
        (
            card.clone(),
            100,
            "contacts must be an array of contact objects",
        ),
        (
            json!("John Smith"),
            100,
            "contacts must be an array of contact objects",
        ),
        (json!([]), 131009, "contacts must hold at least one contact"),
        (
            json!(["John Smith"]),
            100,
            "contacts[0] must be a contact object",
        ),
    ] {
        let (status, v) = emu.graph("POST", &path, Some(send(contacts.clone()))).await;
        assert_eq!(status, 400, "{contacts}: {v}");
        assert_eq!(v["error"]["code"], code, "{contacts}: {v}");
        let details = v["error"]["error_data"]["details"].as_str().unwrap();
        assert!(details.contains(says), "{contacts}: {details}");
    }
}
