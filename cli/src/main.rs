//! `wa-emulator`: serve the emulator, run scenarios, replay fixtures, or act as a
//! simulated WhatsApp user against a running emulator.
//!
//! The binary is its own package (`wa-emulator-cli`) so that it can depend on both the
//! emulator library (`serve`, `replay`) and the scenario runner (`run`), which itself
//! depends on the library; the library depends on neither. Its tests, in `tests/it`,
//! run the built binary as a process.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: its output is the point"
)]

mod media;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use wa_emulator::server::client::Client;
use wa_emulator::server::{self, ServeArgs, ServeOptions};

// jemalloc, not glibc's malloc: fewer instructions per send and a smaller RSS after a
// million sends (emulator/bench/README.md, "Instructions per send").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "wa-emulator",
    version,
    about = "A local, stateful emulator of the WhatsApp Business Cloud API for calling from messages and links",
    long_about = "A local, stateful emulator of the WhatsApp Business Cloud API for calling from messages and links.\n\n\
Start it with `wa-emulator serve` (no configuration needed: the default tenant's ids and token are printed), \
point your integration's Graph base URL at it, and act as the WhatsApp user with the user subcommands \
(`tap`, `open-link`, `call`, `hangup`, …) or the /__emulator admin API.",
    after_help = "Examples:\n  wa-emulator serve --clock virtual --webhook-url http://127.0.0.1:8000/webhook\n  \
wa-emulator tap 16315551234 wamid.HBgL…\n  wa-emulator open-link 16315551234 'https://wa.me/call/15550783881?biz_payload=order-42'\n  \
wa-emulator advance 42s\n  wa-emulator dtmf wacid.HBgL… 12#\n  wa-emulator hangup wacid.HBgL…"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// The running emulator.
    #[arg(
        long,
        env = "WA_EMULATOR_URL",
        default_value = "http://127.0.0.1:4004",
        global = true
    )]
    url: String,
    /// Admin token, when the emulator was started with --admin-token.
    #[arg(long, env = "WA_EMULATOR_ADMIN_TOKEN", global = true)]
    admin_token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the emulator (Ctrl-C to stop).
    Serve(Box<ServeArgs>),
    /// Run scenario files or folders (each against a fresh in-process emulator by default).
    Run(scenario::RunArgs),
    /// Replay webhook fixture files to a receiver, freshly signed.
    Replay(wa_emulator::replay::ReplayArgs),
    /// The user taps the call button of a message → prints the call id and the webhooks.
    Tap {
        /// The user's WhatsApp number (wa_id).
        wa_id: String,
        /// The message with the voice_call button (wamid.…).
        message_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// The user opens a wa.me/call/<number>?biz_payload=… link.
    OpenLink {
        wa_id: String,
        url: String,
        #[command(flatten)]
        target: Target,
    },
    /// The user calls the business from the call icon (no payload).
    Call {
        wa_id: String,
        /// Business phone number id [default: the first one].
        #[arg(long)]
        phone_number_id: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// The user hangs up a call.
    Hangup {
        call_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// The user answers a business-initiated call.
    Answer {
        call_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// The user declines a business-initiated call.
    Decline {
        call_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// The user's media on a call: connected or not, packets and level heard, keys.
    #[command(
        long_about = "The user's media on a call: the state of the user's WebRTC endpoint (ICE, DTLS), what the business sent (packets, bytes, time to the first packet, audio level in dBFS, DTMF keys) and what the user sent.\n\n\
A call is signalling only (no media, state `none`) when the business's SDP had no ICE credentials and candidate, as with a hand-written SDP; a real WebRTC stack's SDP connects the user's media.",
        after_help = "Examples:\n  wa-emulator media wacid.HBgL…\n  wa-emulator media wacid.HBgL… --json"
    )]
    Media {
        /// The call (wacid.…), as `tap`, `call` or the connect webhook names it.
        call_id: String,
        /// Print the emulator's JSON answer instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The user presses phone keys during a call (DTMF, RFC 4733).
    #[command(
        long_about = "The user presses phone keys during a connected call with media: each key goes to the business as RFC 4733 telephone-event packets of 100 ms, on the payload type the business's SDP gave telephone-event/8000.\n\n\
Refused (exit 1) on a signalling-only call (`no_media`) or when the business offered no telephone-event (`media_refused`).",
        after_help = "Examples:\n  wa-emulator dtmf wacid.HBgL… 1\n  wa-emulator dtmf wacid.HBgL… '12#'   # quote # and * in a shell"
    )]
    Dtmf {
        /// The call (wacid.…), as `tap`, `call` or the connect webhook names it.
        call_id: String,
        /// 1 to 64 keys of 0-9, *, #, A-D.
        digits: String,
        /// Print the emulator's JSON answer instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// What the user says from now on: a tone, a WAV file or silence.
    #[command(
        long_about = "What the user says from now on during a call with media: a sine tone, a WAV file (played once, then silence) or silence (the default). The audio goes to the business as Opus, 20 ms a packet.",
        after_help = "Examples:\n  wa-emulator play wacid.HBgL… --tone 440\n  wa-emulator play wacid.HBgL… --wav greeting.wav\n  wa-emulator play wacid.HBgL… --silence"
    )]
    Play {
        /// The call (wacid.…), as `tap`, `call` or the connect webhook names it.
        call_id: String,
        #[command(flatten)]
        sound: media::Sound,
        /// Print the emulator's JSON answer instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The user answers a call permission request.
    PermissionReply {
        wa_id: String,
        /// accept or reject.
        response: String,
        /// A permanent permission (accept only).
        #[arg(long)]
        permanent: bool,
        /// The permission request message answered.
        #[arg(long)]
        message_id: Option<String>,
        /// Without --message-id: the business number granted from its profile [default: the
        /// first number with business-initiated calling].
        #[arg(long)]
        phone_number_id: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// The user sends a text message (opens the 24 h service window).
    SendText {
        wa_id: String,
        text: String,
        /// Business phone number id written to [default: the first one].
        #[arg(long)]
        phone_number_id: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Advance the virtual clock, e.g. `42s`, `90m`, `2h`, `7d` (plain numbers are seconds).
    Advance {
        duration: String,
        #[command(flatten)]
        target: Target,
    },
    /// Create or update a simulated user.
    User {
        wa_id: String,
        #[arg(long)]
        name: Option<String>,
        /// android, ios, smba, smbi, desktop or web.
        #[arg(long)]
        platform: Option<String>,
        /// Client version such as 2.25.27.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

fn main() {
    let cli = Cli::parse();
    // One worker per CPU this process may run on (its affinity mask and cgroup quota,
    // as `available_parallelism` reads them), tokio's own default. A fixed two workers
    // on one pinned CPU (`taskset -c 0`, a one-CPU container) made them take the core
    // from each other while one held the tenant lock: 4 % fewer sends and twice the p99.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async move { dispatch(cli.command).await });
    std::process::exit(code);
}

async fn dispatch(cmd: Command) -> i32 {
    match cmd {
        Command::Serve(args) => {
            let opts = match ServeOptions::resolve(&args) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            // `-e WA_EMULATOR_ADMIN_TOKEN=$UNSET` in a container run gives an empty token,
            // which would pass the "beyond loopback needs a token" rule while protecting
            // nothing.
            if opts.admin_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
                eprintln!("error: the admin token (--admin-token or WA_EMULATOR_ADMIN_TOKEN) is empty; give it a value, or leave it unset to serve on loopback without one");
                return 2;
            }
            init_logging(opts.json_logs);
            // SIGTERM and Ctrl-C stop the server cleanly (`--state` flushed, exit 0). The
            // handler is the server's own: as PID 1 in a container, where a signal without
            // a handler is ignored, `podman stop` works once the banner is printed.
            server::run(opts).await
        }
        Command::Replay(args) => wa_emulator::replay::run(args).await,
        Command::Run(args) => match scenario::cli::in_process(&args) {
            Ok(factory) => scenario::run(args, factory).await,
            Err(e) => {
                eprintln!("error: {e}");
                scenario::cli::EXIT_USAGE
            }
        },
        Command::Tap {
            wa_id,
            message_id,
            target,
        } => {
            act(
                &target,
                &format!("/__emulator/users/{wa_id}/tap"),
                json!({ "message_id": message_id }),
            )
            .await
        }
        Command::OpenLink { wa_id, url, target } => {
            act(
                &target,
                &format!("/__emulator/users/{wa_id}/open-link"),
                json!({ "url": url }),
            )
            .await
        }
        Command::Call {
            wa_id,
            phone_number_id,
            target,
        } => {
            act(
                &target,
                &format!("/__emulator/users/{wa_id}/call"),
                json!({ "phone_number_id": phone_number_id }),
            )
            .await
        }
        Command::Hangup { call_id, target } => {
            act(
                &target,
                &format!("/__emulator/calls/{call_id}/hangup"),
                json!({}),
            )
            .await
        }
        Command::Answer { call_id, target } => {
            act(
                &target,
                &format!("/__emulator/calls/{call_id}/answer"),
                json!({}),
            )
            .await
        }
        Command::Decline { call_id, target } => {
            act(
                &target,
                &format!("/__emulator/calls/{call_id}/decline"),
                json!({}),
            )
            .await
        }
        Command::Media {
            call_id,
            json,
            target,
        } => media::show(&target, &call_id, json).await,
        Command::Dtmf {
            call_id,
            digits,
            json,
            target,
        } => media::dtmf(&target, &call_id, &digits, json).await,
        Command::Play {
            call_id,
            sound,
            json,
            target,
        } => media::play(&target, &call_id, &sound, json).await,
        Command::PermissionReply {
            wa_id,
            response,
            permanent,
            message_id,
            phone_number_id,
            target,
        } => {
            act(
                &target,
                &format!("/__emulator/users/{wa_id}/permission-reply"),
                json!({ "response": response, "permanent": permanent, "message_id": message_id, "phone_number_id": phone_number_id }),
            )
            .await
        }
        Command::SendText {
            wa_id,
            text,
            phone_number_id,
            target,
        } => {
            act(
                &target,
                &format!("/__emulator/users/{wa_id}/messages"),
                json!({ "text": text, "phone_number_id": phone_number_id }),
            )
            .await
        }
        Command::Advance { duration, target } => match parse_duration(&duration) {
            Some(secs) => {
                act(
                    &target,
                    "/__emulator/clock/advance",
                    json!({ "seconds": secs }),
                )
                .await
            }
            None => {
                eprintln!(
                    "error: expected a duration such as 42s, 90m, 2h or 7d; got {duration:?}"
                );
                2
            }
        },
        Command::User {
            wa_id,
            name,
            platform,
            version,
            target,
        } => {
            act(
                &target,
                "/__emulator/users",
                json!({ "wa_id": wa_id, "name": name, "platform": platform, "version": version }),
            )
            .await
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WA_EMULATOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.trim().parse().ok()?;
    let mult = match unit {
        "ms" => 0.001,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    (n >= 0.0).then_some(n * mult)
}

/// POSTs an admin action, prints the answer and the webhooks it caused.
async fn act(target: &Target, path: &str, body: Value) -> i32 {
    let client = Client::new();
    let url = |path: &str| format!("{}{path}", target.url.trim_end_matches('/'));
    let token = target.admin_token.as_deref();
    let before = match client
        .json("GET", &url("/__emulator/webhooks?limit=0"), token, None)
        .await
    {
        Ok(r) => r.json(),
        Err(e) => {
            eprintln!("error: cannot reach the emulator at {}: {}\n  start one with `wa-emulator serve`, or pass --url", target.url, e.problem);
            return 2;
        }
    };
    let last_seq = before["last_seq"].as_u64().unwrap_or(0);
    let (status, answer) = match client.json("POST", &url(path), token, Some(&body)).await {
        Ok(r) => (r.status.as_u16(), r.json()),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if !(200..300).contains(&status) {
        let details = answer["error"]["error_data"]["details"]
            .as_str()
            .unwrap_or("");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        eprintln!("refused ({status}): {message}\n  {details}");
        return 1;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&answer).unwrap_or_default()
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let since = url(&format!("/__emulator/webhooks?since={last_seq}"));
    if let Ok(after) = client.json("GET", &since, token, None).await {
        for d in after.json()["deliveries"].as_array().into_iter().flatten() {
            let id = d["call_id"]
                .as_str()
                .or(d["message_id"].as_str())
                .unwrap_or("");
            println!(
                "webhook {:<24} {:<22} {:<9} {}",
                d["field"].as_str().unwrap_or(""),
                d["event"].as_str().unwrap_or(""),
                d["state"].as_str().unwrap_or(""),
                id
            );
        }
    }
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("42s"), Some(42.0));
        assert_eq!(super::parse_duration("2h"), Some(7200.0));
        assert_eq!(super::parse_duration("7d"), Some(604800.0));
        assert_eq!(super::parse_duration("90"), Some(90.0));
        assert_eq!(super::parse_duration("soon"), None);
    }
}
