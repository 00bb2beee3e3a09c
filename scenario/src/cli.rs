//! `wa-emulator run`: finds scenario files, shards them, checks them all, runs them in
//! parallel (each against its own emulator, or on its own tenant of a shared one) and
//! reports, optionally as JUnit XML.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the report of `wa-emulator run` is for the terminal"
)]

use crate::check::check;
use crate::diagnostic::{render_all, Source};
use crate::runner::http::Http;
use crate::runner::target::{RemoteTarget, RunningTarget, Starting, TargetFactory, CLOCK_START_MS};
use crate::runner::{needs_app, run_scenario, run_scenario_on_fresh, Failure, Options};
use crate::syntax::duration::{format_elapsed, parse_duration};
use crate::syntax::{parse, Scenario};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_emulator::api::admin_types::{Config, TenantInfo};
use wa_emulator::domain::tenant::MAX_GENERATED_NUMBERS;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::{ServeArgs, ServeOptions};

/// Flags of `wa-emulator run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Scenario files, or folders searched recursively for `*.scn`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Scenarios run at once (default: the number of cores). With --target and --app
    /// (or --no-tenants) it is 1.
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,

    /// Seed for each in-process emulator, so ids are the same on every run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Run only shard K of N (1-based); files are dealt round-robin by sorted path.
    #[arg(long, value_name = "K/N", value_parser = parse_partition)]
    pub partition: Option<Partition>,

    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Run against the emulator at this URL instead of fresh in-process ones: each
    /// scenario on a tenant of its own (POST /__emulator/tenants; virtual clock, the
    /// run's seed), in parallel, deleted at its end. With --app (the app under test
    /// knows one token and one set of ids) or --no-tenants, on the emulator's default
    /// tenant instead, reset before each scenario, one at a time.
    #[arg(long, value_name = "URL", env = "WA_EMULATOR_TARGET")]
    pub target: Option<String>,

    /// With --target: run on the emulator's default tenant (its own configuration),
    /// reset before each scenario, one at a time, instead of a tenant per scenario.
    #[arg(long, requires = "target")]
    pub no_tenants: bool,

    /// The TOML config of `wa-emulator serve --config` (apps, WABAs, phone numbers,
    /// users, behaviour) for every in-process emulator of the run. Not with --target:
    /// that emulator has its own.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Point webhooks at the app under test at this URL; `expect the app to …` steps
    /// check the Graph requests it makes. Scenarios with such steps are skipped without it.
    #[arg(long, value_name = "URL")]
    pub app: Option<String>,

    /// Bearer token for the admin API, if the emulator was started with one.
    #[arg(long, value_name = "TOKEN", env = "WA_EMULATOR_ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// Longest a single scenario may run, like 60s or 2m.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Only parse and check the files; run nothing.
    #[arg(long)]
    pub check: bool,

    /// Print only failures and the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `--partition K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub k: usize,
    pub n: usize,
}

pub fn parse_partition(s: &str) -> Result<Partition, String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not K/N, like 2/4"))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| format!("`{k}` in `{s}` is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` in `{s}` is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!(
            "`{s}`: K must be between 1 and N, and N at least 1"
        ));
    }
    Ok(Partition { k, n })
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration(s)
        .map(Duration::from_millis)
        .map_err(|e| e.0)
}

/// Exit codes, per the product contract.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// One scenario file, parsed and checked.
pub struct Loaded {
    /// As the user gave it, relative where possible; used in every report.
    pub name: String,
    pub source: Source,
    pub scenario: Scenario,
}

#[derive(Clone, Debug)]
pub enum Verdict {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: String,
    pub verdict: Verdict,
    pub elapsed: Duration,
}

/// Runs `wa-emulator run` and returns the process exit code.
#[allow(clippy::disallowed_methods, reason = "reports wall-clock time")]
pub async fn run(args: RunArgs, factory: Arc<dyn TargetFactory>) -> i32 {
    if let Err(e) = config_applies(&args) {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let files = match discover(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    if files.is_empty() {
        eprintln!("error: no `.scn` files under {}", show_paths(&args.paths));
        return EXIT_USAGE;
    }
    let files = shard(files, args.partition);
    let (loaded, diagnostics) = load_all(&files);
    if !diagnostics.is_empty() {
        eprint!("{diagnostics}");
        return EXIT_USAGE;
    }
    if args.check {
        println!("{} checked, no errors", plural(loaded.len(), "scenario"));
        return EXIT_OK;
    }
    let sharing = match &args.target {
        Some(url) => Some(sharing_of(url, &args).await),
        None => None,
    };
    let jobs = if matches!(sharing, Some((Sharing::Reset, _))) {
        1
    } else {
        args.jobs
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .max(1)
    };
    let opts = Options {
        app: args.app.clone(),
        admin_token: args.admin_token.clone(),
        reset: matches!(sharing, Some((Sharing::Reset, _))),
        ..Options::default()
    };
    let door = match (&args.target, &sharing) {
        (Some(url), Some((Sharing::Tenants, _))) => {
            format!("against {url}, a tenant each, seed {}", args.seed)
        }
        (Some(url), Some((Sharing::Reset, why))) => {
            format!("against {url}, its default tenant reset before each: {why}")
        }
        _ => format!("in-process, seed {}", args.seed),
    };
    if !args.quiet {
        println!(
            "running {} ({door}, {} at once)",
            plural(loaded.len(), "scenario"),
            jobs
        );
    }
    let started = Instant::now();
    let outcomes = execute(loaded, jobs, &args, &opts, factory).await;
    let wall = started.elapsed();
    print_report(&outcomes, wall, args.quiet);
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, junit_xml(&outcomes, wall)) {
            eprintln!("error: writing JUnit XML to {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if outcomes
        .iter()
        .any(|o| matches!(o.verdict, Verdict::Failed(_)))
    {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// How scenarios share an emulator at `--target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Each on a tenant of its own (`POST /__emulator/tenants`), deleted at its end;
    /// scenarios run in parallel and see nothing of each other.
    Tenants,
    /// Each on the default tenant after `POST /__emulator/reset`, one at a time: with
    /// `--app` (the app under test is configured with that tenant's token and ids), with
    /// `--no-tenants`, or when the emulator has no tenants (an older version).
    Reset,
}

/// How the run shares the emulator at `url`, and why (for the banner).
pub async fn sharing_of(url: &str, args: &RunArgs) -> (Sharing, &'static str) {
    if args.app.is_some() {
        return (Sharing::Reset, "--app uses it");
    }
    if args.no_tenants {
        return (Sharing::Reset, "--no-tenants");
    }
    let probe = Http::new()
        .send(
            "GET",
            &format!("{}/__emulator/tenants", url.trim_end_matches('/')),
            args.admin_token.as_deref(),
            None,
        )
        .await;
    match probe {
        // An emulator from before tenants does not know the route.
        Ok(r) if r.status == 404 => (Sharing::Reset, "the emulator has no tenants"),
        // Anything else (even no answer) is for each scenario's setup to report.
        _ => (Sharing::Tenants, ""),
    }
}

/// A scenario's tenant on a shared emulator: created before the scenario, deleted after
/// it whatever the outcome. It looks like the emulator's default tenant to a story:
/// the same display numbers, able to do the same (its ids differ; the runner puts them
/// in place of the default tenant's ids a story writes), and the in-process door's
/// virtual clock and seed, so both doors give the same timestamps.
struct Lease {
    url: String,
    tenant: TenantInfo,
    /// The default tenant's ids and the tenant's in their place ([`Options::portable_ids`]).
    portable_ids: Vec<(String, String)>,
}

impl Lease {
    /// The default tenant's configuration: read once per run, shared by every lease.
    async fn default_config(
        http: &Http,
        url: &str,
        opts: &Options,
        once: &tokio::sync::OnceCell<Result<Config, String>>,
    ) -> Result<Config, String> {
        once.get_or_init(|| async {
            let config = http
                .send("GET", &format!("{url}/__emulator/config"), opts.admin_token.as_deref(), None)
                .await?;
            serde_json::from_value(config.body.clone()).map_err(|e| {
                format!(
                    "GET /__emulator/config answered HTTP {} with something this runner cannot read ({e}): {}",
                    config.status,
                    crate::runner::summarize(&config.body)
                )
            })
        })
        .await
        .clone()
    }

    async fn create(
        http: &Http,
        url: &str,
        opts: &Options,
        seed: u64,
        default: &tokio::sync::OnceCell<Result<Config, String>>,
    ) -> Result<Lease, String> {
        let url = url.trim_end_matches('/').to_owned();
        let token = opts.admin_token.as_deref();
        let default = Lease::default_config(http, &url, opts, default).await?;
        let numbers: Vec<serde_json::Value> = default
            .phone_numbers
            .iter()
            .take(MAX_GENERATED_NUMBERS)
            .map(|n| {
                serde_json::json!({
                    "display_phone_number": n.display_phone_number,
                    "business_initiated_calling": n.business_initiated_calling,
                    "profile": n.profile,
                })
            })
            .collect();
        let mut body = serde_json::json!({
            "clock": "virtual",
            "clock_start": CLOCK_START_MS / 1000,
            "seed": seed,
        });
        if !numbers.is_empty() {
            body["phone_numbers"] = numbers.into();
        }
        let r = http
            .send(
                "POST",
                &format!("{url}/__emulator/tenants"),
                token,
                Some(&body),
            )
            .await?;
        if !r.is_success() {
            return Err(format!(
                "POST /__emulator/tenants answered HTTP {}: {}",
                r.status,
                crate::runner::summarize(&r.body)
            ));
        }
        let tenant: TenantInfo = serde_json::from_value(r.body.clone()).map_err(|e| {
            format!(
                "POST /__emulator/tenants answered something this runner cannot read ({e}): {}\n  help: is the target a wa-emulator of the same version as this runner?",
                crate::runner::summarize(&r.body)
            )
        })?;
        let pair = |a: Option<String>, b: String| a.map(|a| (a, b));
        let mut portable_ids: Vec<(String, String)> = [
            pair(
                default.app_id.map(|i| i.to_string()),
                tenant.app_id.to_string(),
            ),
            pair(
                default.waba_id.map(|i| i.to_string()),
                tenant.waba_id.to_string(),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        portable_ids.extend(
            default
                .phone_numbers
                .iter()
                .zip(&tenant.phone_numbers)
                .map(|(d, t)| (d.id.to_string(), t.id.to_string())),
        );
        portable_ids.retain(|(d, t)| d != t);
        Ok(Lease {
            url,
            tenant,
            portable_ids,
        })
    }

    /// Best effort: a tenant left behind is freed with the emulator.
    async fn delete(self, http: &Http, opts: &Options) {
        let path = format!("{}{}", self.url, self.tenant.admin_path);
        let _ = http
            .send("DELETE", &path, opts.admin_token.as_deref(), None)
            .await;
    }
}

/// `--config` configures the emulators the run starts, so it cannot go with `--target`.
fn config_applies(args: &RunArgs) -> Result<(), String> {
    match (&args.config, &args.target) {
        (Some(config), Some(target)) => Err(format!(
            "--config {} cannot be used with --target {target}: the emulator at {target} was started with its own configuration (start it with `wa-emulator serve --config {}` and run with --no-tenants to use it; each scenario's tenant has the standard two numbers)",
            config.display(),
            config.display()
        )),
        _ => Ok(()),
    }
}

/// The door for the run's in-process emulators: [`crate::InProcess`], or with `--config`
/// emulators with that file's apps, WABAs, numbers, users and behaviour. The file is read
/// and checked once, here, so a bad one stops the run before anything starts.
pub fn in_process(args: &RunArgs) -> Result<Arc<dyn TargetFactory>, String> {
    config_applies(args)?;
    let Some(path) = &args.config else {
        return Ok(Arc::new(crate::InProcess));
    };
    let mut opts = ServeOptions::resolve(&ServeArgs {
        config: Some(path.clone()),
        ..ServeArgs::default()
    })?;
    // What makes a run's emulators isolated and repeatable wins over the file: a free
    // loopback port, the virtual clock (from the file's `clock_start` if it has one),
    // the run's --seed, no admin token, and nothing written to disk.
    opts.addr = "127.0.0.1:0".parse().expect("static address");
    opts.clock = ClockMode::Virtual;
    opts.clock_start_ms = opts.clock_start_ms.or(Some(CLOCK_START_MS));
    opts.admin_token = None;
    opts.state = None;
    opts.record = None;
    Ok(Arc::new(Configured(opts)))
}

/// In-process emulators started from a `--config` file.
struct Configured(ServeOptions);

impl TargetFactory for Configured {
    fn start(&self, seed: u64) -> Starting<'_> {
        let mut opts = self.0.clone();
        opts.seed = seed;
        Box::pin(async move {
            Ok(Box::new(crate::InProcess::spawn_with(opts).await?) as Box<dyn RunningTarget>)
        })
    }
}

/// Every `.scn` file under the given paths, sorted and without duplicates.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "scn") {
            out.push(path);
        }
    }
    Ok(())
}

/// Shard K of N: the files at sorted positions K-1, K-1+N, K-1+2N, …
pub fn shard(files: Vec<PathBuf>, partition: Option<Partition>) -> Vec<PathBuf> {
    match partition {
        None => files,
        Some(Partition { k, n }) => files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k - 1)
            .map(|(_, f)| f)
            .collect(),
    }
}

/// Parses and checks every file; returns the good ones and the rendered diagnostics of
/// the bad ones (empty when all are fine).
pub fn load_all(files: &[PathBuf]) -> (Vec<Loaded>, String) {
    let mut loaded = Vec::new();
    let mut out = String::new();
    for f in files {
        let name = f.display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "error: {name}: {e}");
                continue;
            }
        };
        match load(&name, &text) {
            Ok(l) => loaded.push(l),
            Err(rendered) => out.push_str(&rendered),
        }
    }
    (loaded, out)
}

/// Parses and checks one file's text; `Err` holds the rendered diagnostics.
pub fn load(name: &str, text: &str) -> Result<Loaded, String> {
    let source = Source::new(name, text);
    let (scenario, mut diags) = parse(text);
    diags.extend(check(&scenario));
    diags.sort_by_key(|d| d.span.start);
    if diags.is_empty() {
        Ok(Loaded {
            name: name.to_string(),
            source,
            scenario,
        })
    } else {
        Err(render_all(&diags, &source))
    }
}

/// Runs the scenarios, `jobs` at a time, each against a fresh emulator from `factory`
/// or the shared `args.target` (on a tenant of its own; with `opts.reset`, on the
/// default tenant after a reset, and the caller runs them one at a time), printing a
/// line per scenario unless `args.quiet`, in the order of `loaded` whatever order they
/// finish in; returns the outcomes sorted by name.
pub async fn execute(
    loaded: Vec<Loaded>,
    jobs: usize,
    args: &RunArgs,
    opts: &Options,
    factory: Arc<dyn TargetFactory>,
) -> Vec<Outcome> {
    let jobs = jobs.max(1);
    let mut outcomes = if args.target.is_none() {
        execute_in_process(loaded, jobs, args, opts, factory).await
    } else {
        execute_on_target(loaded, jobs, args, opts, factory).await
    };
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    outcomes
}

/// Fresh in-process emulators: each scenario's emulator and runner share one thread, so
/// a request and its answer never wake another thread. Up to one thread per core (no
/// more than `jobs`), each with its own single-threaded runtime and HTTP client, taking
/// the next scenario when one ends; `jobs` beyond the threads run interleaved on them.
async fn execute_in_process(
    loaded: Vec<Loaded>,
    jobs: usize,
    args: &RunArgs,
    opts: &Options,
    factory: Arc<dyn TargetFactory>,
) -> Vec<Outcome> {
    let total = loaded.len();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = jobs.min(cores).min(total).max(1);
    let per_thread = jobs.div_ceil(threads);
    let loaded = Arc::new(loaded);
    let next = Arc::new(AtomicUsize::new(0));
    let opts = Arc::new(opts.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Outcome)>();
    for t in 0..threads {
        let (loaded, next, opts, factory, tx) = (
            loaded.clone(),
            next.clone(),
            opts.clone(),
            factory.clone(),
            tx.clone(),
        );
        let (seed, timeout) = (args.seed, args.timeout);
        let worker = move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    // The other threads (or none) take the scenarios this one cannot.
                    eprintln!("error: cannot start a runner thread: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                let http = Http::new();
                let mut lanes = tokio::task::JoinSet::new();
                for _ in 0..per_thread {
                    let (loaded, next, opts, factory, tx, http) = (
                        loaded.clone(),
                        next.clone(),
                        opts.clone(),
                        factory.clone(),
                        tx.clone(),
                        http.clone(),
                    );
                    lanes.spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(l) = loaded.get(i) else { break };
                            let story = {
                                let (loaded, opts, factory, http) =
                                    (loaded.clone(), opts.clone(), factory.clone(), http.clone());
                                tokio::spawn(async move {
                                    let door = Door {
                                        target: None,
                                        seed,
                                        factory,
                                        default_config: Arc::default(),
                                    };
                                    timed(&loaded[i], &http, &opts, door, timeout).await
                                })
                            };
                            let outcome = story.await.unwrap_or_else(|e| crashed(l, e));
                            if tx.send((i, outcome)).is_err() {
                                break;
                            }
                        }
                    });
                }
                while lanes.join_next().await.is_some() {}
            });
        };
        if let Err(e) = std::thread::Builder::new()
            .name(format!("scenarios-{t}"))
            .spawn(worker)
        {
            eprintln!("error: cannot start a runner thread: {e}");
        }
    }
    drop(tx);
    let mut done = InOrder::new(total);
    while let Some((i, outcome)) = rx.recv().await {
        for o in done.put(i, outcome) {
            print_progress(o, args.quiet);
        }
    }
    done.slots
        .into_iter()
        .zip(loaded.iter())
        .map(|(o, l)| {
            o.unwrap_or_else(|| Outcome {
                name: l.name.clone(),
                verdict: Verdict::Failed("the runner crashed: no thread ran it".into()),
                elapsed: Duration::ZERO,
            })
        })
        .collect()
}

/// Outcomes that finish in any order, released in the order of their index: the
/// progress lines of a run read the same whatever the number of jobs.
struct InOrder {
    slots: Vec<Option<Outcome>>,
    shown: usize,
}

impl InOrder {
    fn new(total: usize) -> InOrder {
        InOrder {
            slots: (0..total).map(|_| None).collect(),
            shown: 0,
        }
    }

    /// Files the outcome of scenario `i`; returns those now due, in order.
    fn put(&mut self, i: usize, outcome: Outcome) -> impl Iterator<Item = &Outcome> {
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some(outcome);
        }
        let from = self.shown;
        while let Some(Some(_)) = self.slots.get(self.shown) {
            self.shown += 1;
        }
        self.slots[from..self.shown].iter().flatten()
    }
}

/// The emulator at `--target`: every scenario a task of the caller's runtime, sharing
/// one HTTP client (one pool of connections to that emulator).
async fn execute_on_target(
    loaded: Vec<Loaded>,
    jobs: usize,
    args: &RunArgs,
    opts: &Options,
    factory: Arc<dyn TargetFactory>,
) -> Vec<Outcome> {
    let http = Http::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
    // The shared emulator's default tenant, which every scenario's tenant mirrors.
    let default_config = Arc::new(tokio::sync::OnceCell::new());
    let opts = Arc::new(opts.clone());
    let mut tasks = Vec::new();
    for l in loaded {
        let (sem, http, opts, factory) = (sem.clone(), http.clone(), opts.clone(), factory.clone());
        let default_config = default_config.clone();
        let (target, seed, timeout) = (args.target.clone(), args.seed, args.timeout);
        let name = l.name.clone();
        let task = tokio::spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let door = Door {
                target,
                seed,
                factory,
                default_config,
            };
            timed(&l, &http, &opts, door, timeout).await
        });
        tasks.push((name, task));
    }
    let mut outcomes = Vec::new();
    for (name, t) in tasks {
        let outcome = t.await.unwrap_or_else(|e| Outcome {
            name,
            verdict: Verdict::Failed(format!("the runner crashed: {e}")),
            elapsed: Duration::ZERO,
        });
        print_progress(&outcome, args.quiet);
        outcomes.push(outcome);
    }
    outcomes
}

/// One scenario and how long it took.
#[allow(clippy::disallowed_methods, reason = "reports wall-clock time")]
async fn timed(l: &Loaded, http: &Http, opts: &Options, door: Door, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let verdict = run_one(l, http, opts, door, timeout).await;
    Outcome {
        name: l.name.clone(),
        verdict,
        elapsed: started.elapsed(),
    }
}

fn crashed(l: &Loaded, e: tokio::task::JoinError) -> Outcome {
    Outcome {
        name: l.name.clone(),
        verdict: Verdict::Failed(format!("the runner crashed: {e}")),
        elapsed: Duration::ZERO,
    }
}

/// Where one scenario runs: a fresh emulator from `factory`, or the shared `target`.
struct Door {
    target: Option<String>,
    seed: u64,
    factory: Arc<dyn TargetFactory>,
    default_config: Arc<tokio::sync::OnceCell<Result<Config, String>>>,
}

async fn run_one(
    l: &Loaded,
    http: &Http,
    opts: &Options,
    door: Door,
    timeout: Duration,
) -> Verdict {
    let Door {
        target,
        seed,
        factory,
        default_config,
    } = door;
    if needs_app(&l.scenario) && opts.app.is_none() {
        return Verdict::Skipped("has `expect the app …` steps; run with --app URL".into());
    }
    // Started by the factory for this scenario, or the shared `--target`.
    let fresh = target.is_none();
    let (running, lease): (Box<dyn RunningTarget>, _) = match target {
        Some(url) if opts.reset => (Box::new(RemoteTarget(url)), None),
        Some(url) => match Lease::create(http, &url, opts, seed, &default_config).await {
            Ok(lease) => (Box::new(RemoteTarget(url)), Some(lease)),
            Err(e) => {
                return Verdict::Failed(format!(
                    "  before the first step:\n  could not create a tenant on {url}: {e}"
                ))
            }
        },
        None => match factory.start(seed).await {
            Ok(t) => (t, None),
            Err(e) => return Verdict::Failed(format!("could not start an emulator: {e}")),
        },
    };
    let on_tenant;
    let opts = match &lease {
        Some(lease) => {
            on_tenant = Options {
                admin_path: Some(lease.tenant.admin_path.clone()),
                portable_ids: lease.portable_ids.clone(),
                ..opts.clone()
            };
            &on_tenant
        }
        None => opts,
    };
    let result = if fresh {
        tokio::time::timeout(
            timeout,
            run_scenario_on_fresh(http, &*running, &l.source, &l.scenario, opts),
        )
        .await
    } else {
        let base = running.base_url();
        tokio::time::timeout(
            timeout,
            run_scenario(http, &base, &l.source, &l.scenario, opts),
        )
        .await
    };
    if let Some(lease) = lease {
        lease.delete(http, opts).await;
    }
    drop(running);
    match result {
        Ok(Ok(())) => Verdict::Passed,
        Ok(Err(f)) => Verdict::Failed(render_failure(l, &f)),
        Err(_) => Verdict::Failed(format!(
            "timed out after {} (raise it with --timeout)",
            format_elapsed(timeout)
        )),
    }
}

/// A failure as the report shows it: the step's position and line, then what happened.
pub fn render_failure(l: &Loaded, f: &Failure) -> String {
    let mut out = String::new();
    if let Some(i) = f.step {
        let step = &l.scenario.steps[i];
        let (line, _) = l.source.line_col(step.span.start);
        let _ = writeln!(out, "  step {}", l.source.position(step.span.start));
        let _ = writeln!(out, "  {line} | {}", l.source.line_text(line).trim());
    } else {
        let _ = writeln!(out, "  before the first step:");
    }
    for line in f.message.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn print_progress(o: &Outcome, quiet: bool) {
    let t = format_elapsed(o.elapsed);
    match &o.verdict {
        Verdict::Passed if !quiet => println!("ok    {} ({t})", o.name),
        Verdict::Skipped(why) if !quiet => println!("skip  {} ({why})", o.name),
        Verdict::Failed(_) => println!("FAIL  {} ({t})", o.name),
        _ => {}
    }
}

fn print_report(outcomes: &[Outcome], wall: Duration, _quiet: bool) {
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Failed(_)))
        .collect();
    for o in &failed {
        if let Verdict::Failed(msg) = &o.verdict {
            println!("\n---- {} ----\n{}", o.name, msg.trim_end());
        }
    }
    let passed = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Passed))
        .count();
    let skipped = outcomes.len() - passed - failed.len();
    println!(
        "\n{}: {} passed, {} failed, {} skipped in {}",
        if failed.is_empty() { "ok" } else { "FAILED" },
        passed,
        failed.len(),
        skipped,
        format_elapsed(wall)
    );
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// JUnit XML: one `<testsuite>` per folder, one `<testcase>` per file.
pub fn junit_xml(outcomes: &[Outcome], wall: Duration) -> String {
    let count =
        |f: fn(&Verdict) -> bool, os: &[&Outcome]| os.iter().filter(|o| f(&o.verdict)).count();
    let is_failed = |v: &Verdict| matches!(v, Verdict::Failed(_));
    let is_skipped = |v: &Verdict| matches!(v, Verdict::Skipped(_));
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"wa-emulator scenarios\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        all.len(),
        count(is_failed, &all),
        count(is_skipped, &all),
        wall.as_secs_f64()
    );
    let mut suites: Vec<(String, Vec<&Outcome>)> = Vec::new();
    for o in outcomes {
        let dir = Path::new(&o.name)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match suites.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, v)) => v.push(o),
            None => suites.push((dir, vec![o])),
        }
    }
    for (dir, os) in suites {
        let time: f64 = os.iter().map(|o| o.elapsed.as_secs_f64()).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml_escape(&dir),
            os.len(),
            count(is_failed, &os),
            count(is_skipped, &os),
            time
        );
        for o in os {
            let file = Path::new(&o.name)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" time=\"{:.3}\"",
                xml_escape(&file),
                xml_escape(&dir.replace('/', ".")),
                xml_escape(&o.name),
                o.elapsed.as_secs_f64()
            );
            match &o.verdict {
                Verdict::Passed => out.push_str("/>\n"),
                Verdict::Skipped(why) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(why)
                    );
                }
                Verdict::Failed(msg) => {
                    let first = msg
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("failed")
                        .trim();
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(first),
                        xml_escape(msg)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_deals_sorted_files_round_robin() {
        let files: Vec<PathBuf> = (0..7).map(|i| PathBuf::from(format!("{i}.scn"))).collect();
        let p = |s| Some(parse_partition(s).unwrap());
        let a = shard(files.clone(), p("1/3"));
        let b = shard(files.clone(), p("2/3"));
        let c = shard(files.clone(), p("3/3"));
        assert_eq!(
            a,
            vec![PathBuf::from("0.scn"), "3.scn".into(), "6.scn".into()]
        );
        assert_eq!(a.len() + b.len() + c.len(), 7);
        assert!(b.iter().all(|f| !a.contains(f) && !c.contains(f)));
    }

    #[test]
    fn progress_is_shown_in_the_order_of_the_files_whatever_order_they_finish_in() {
        let outcome = |name: &str| Outcome {
            name: name.into(),
            verdict: Verdict::Passed,
            elapsed: Duration::ZERO,
        };
        let mut order = InOrder::new(4);
        let names = |o: &mut dyn Iterator<Item = &Outcome>| {
            o.map(|o| o.name.clone()).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(names(&mut order.put(2, outcome("c"))), "");
        assert_eq!(names(&mut order.put(0, outcome("a"))), "a");
        assert_eq!(names(&mut order.put(3, outcome("d"))), "");
        assert_eq!(names(&mut order.put(1, outcome("b"))), "b c d");
    }

    #[test]
    fn partition_flags_are_validated() {
        assert!(parse_partition("0/2").is_err());
        assert!(parse_partition("3/2").is_err());
        assert!(parse_partition("2").is_err());
        assert_eq!(parse_partition("2/2"), Ok(Partition { k: 2, n: 2 }));
    }

    #[test]
    fn junit_marks_failures_and_skips_and_escapes_text() {
        let outcomes = vec![
            Outcome {
                name: "s/button/a.scn".into(),
                verdict: Verdict::Passed,
                elapsed: Duration::from_millis(5),
            },
            Outcome {
                name: "s/button/b.scn".into(),
                verdict: Verdict::Failed("expected <x> & \"y\"".into()),
                elapsed: Duration::ZERO,
            },
            Outcome {
                name: "s/app/c.scn".into(),
                verdict: Verdict::Skipped("needs --app".into()),
                elapsed: Duration::ZERO,
            },
        ];
        let xml = junit_xml(&outcomes, Duration::from_secs(1));
        assert!(xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(xml.contains("<testsuite name=\"s/button\" tests=\"2\" failures=\"1\""));
        assert!(xml.contains("<failure message=\"expected &lt;x&gt; &amp; &quot;y&quot;\">"));
        assert!(xml.contains("<skipped message=\"needs --app\"/>"));
    }
}
