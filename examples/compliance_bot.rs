//! A small but realistic compliance-recording bot.
//!
//! It starts the crate's Graph emulator (or talks to `--graph-url`) and its own notification
//! webhook on 127.0.0.1, then runs many concurrent simulated calls through mixed scenarios:
//! immediate completion, `running` operations settled by notifications (duplicated, out of
//! order, upper-case dash-less ids, PascalCase statuses), throttling with both `Retry-After`
//! forms, failed operations, `8506`, server errors, malformed bodies, slow answers, operations
//! that complete only after the bot gave up, and recordings that break half way. Each recording
//! call has several media tasks writing frames to temporary files, only through retention
//! capabilities. At the end it prints a per-call summary, verifies the audit trail, checks the
//! policy against what reached the disk and the emulator, and exits non-zero if any check fails.
//!
//! ```sh
//! cargo run --example compliance_bot --features emulator,reqwest-0_13 -- --calls 50
//! ```
//!
//! Flags: `--calls N` (default 50), `--graph-url URL` (an external Graph-compatible endpoint
//! instead of the emulator), `--listen ADDR` (webhook, default 127.0.0.1:0), `--callback-url
//! URL` (what the emulator posts notifications to; default the webhook), `--audit-out FILE`
//! (JSON lines; default a temporary file; an existing file is refused, never deleted),
//! `--append` (add to an existing `--audit-out` trail, a torn last line included),
//! `--token-env VAR` (bearer token for `--graph-url`,
//! default `GRAPH_TOKEN`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use recording_status::audit::{AuditSink, JsonLinesSink, verify};
use recording_status::auth::Authenticated;
use recording_status::driver::{Driver, DriverConfig, DriverEvent, EndStatus, Started};
use recording_status::emulator::{Behavior, Emulator, MalformedBody, NotifyStyle, RetryAfter};
use recording_status::retry::RetryPolicy;
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::{AccessToken, CallId, CallState, Endpoint, Graph, RetentionWriter};

/// Media tasks per recording call, and how long a recording lasts.
const STREAMS: usize = 3;
const RECORD_FOR: Duration = Duration::from_millis(300);
const FRAME: usize = 320; // 20 ms of 8 kHz 16-bit audio

#[derive(Debug, Clone)]
struct Args {
    calls: usize,
    graph_url: Option<String>,
    listen: SocketAddr,
    callback_url: Option<String>,
    audit_out: Option<PathBuf>,
    append: bool,
    token_env: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        calls: 50,
        graph_url: None,
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        callback_url: None,
        audit_out: None,
        append: false,
        token_env: "GRAPH_TOKEN".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--calls" => {
                args.calls = value()?
                    .parse()
                    .map_err(|_| "--calls takes a number".to_owned())?;
            }
            "--graph-url" => args.graph_url = Some(value()?),
            "--listen" => {
                args.listen = value()?
                    .parse()
                    .map_err(|_| "--listen takes an address like 127.0.0.1:8080".to_owned())?;
            }
            "--callback-url" => args.callback_url = Some(value()?),
            "--audit-out" => args.audit_out = Some(PathBuf::from(value()?)),
            "--append" => args.append = true,
            "--token-env" => args.token_env = value()?,
            "-h" | "--help" => {
                return Err(
                    "usage: compliance_bot [--calls N] [--graph-url URL] [--listen ADDR] \
                     [--callback-url URL] [--audit-out FILE [--append]] [--token-env VAR]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown flag {other}; see --help")),
        }
    }
    if args.calls == 0 || args.calls > 10_000 {
        return Err("--calls must be between 1 and 10000".to_owned());
    }
    Ok(args)
}

/// What Graph does for a call, and what the bot then does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Immediate,
    Notified,
    NotifiedMessy,
    Throttled429,
    Unavailable503,
    OperationFailed,
    NotCompliance,
    ServerError,
    Malformed,
    Slow,
    TooLate,
    BreaksMidway,
}

impl Scenario {
    const ALL: [Self; 12] = [
        Self::Immediate,
        Self::Notified,
        Self::Throttled429,
        Self::NotifiedMessy,
        Self::OperationFailed,
        Self::Immediate,
        Self::Unavailable503,
        Self::NotCompliance,
        Self::ServerError,
        Self::Malformed,
        Self::Slow,
        Self::TooLate,
    ];

    fn for_call(i: usize) -> Self {
        if i % 7 == 6 {
            Self::BreaksMidway
        } else {
            Self::ALL[i % Self::ALL.len()]
        }
    }

    /// The emulator's script: the answer to `recording`, then to whatever follows.
    fn behaviors(self) -> Vec<Behavior> {
        let notify = NotifyStyle::default();
        let messy = NotifyStyle::messy();
        let first = match self {
            Self::Immediate | Self::BreaksMidway => Behavior::Complete,
            Self::Notified => Behavior::Running {
                delay: Duration::from_millis(150),
                notify,
            },
            Self::NotifiedMessy => Behavior::Running {
                delay: Duration::from_millis(100),
                notify: messy,
            },
            Self::Throttled429 => Behavior::Throttle {
                status: 429,
                retry_after: RetryAfter::Seconds(1),
            },
            Self::Unavailable503 => Behavior::Throttle {
                status: 503,
                retry_after: RetryAfter::HttpDate(Duration::from_secs(1)),
            },
            Self::OperationFailed => Behavior::Failed {
                code: 500,
                subcode: 8510,
                message: "media processor unavailable".to_owned(),
            },
            Self::NotCompliance => Behavior::Forbidden8506,
            Self::ServerError => Behavior::ServerError { status: 504 },
            Self::Malformed => Behavior::Malformed(MalformedBody::Html),
            Self::Slow => Behavior::Slow {
                delay: Duration::from_millis(400),
                then: Box::new(Behavior::Complete),
            },
            Self::TooLate => Behavior::Running {
                delay: Duration::from_millis(2_500),
                notify,
            },
        };
        vec![first, Behavior::Complete]
    }

    /// Whether media may be persisted in this scenario.
    fn should_record(self) -> bool {
        matches!(
            self,
            Self::Immediate
                | Self::Notified
                | Self::NotifiedMessy
                | Self::Throttled429
                | Self::Unavailable503
                | Self::Slow
                | Self::BreaksMidway
        )
    }
}

#[derive(Debug, Clone, Default)]
struct Report {
    scenario: Option<Scenario>,
    final_state: Option<CallState>,
    frames: u64,
    bytes_written: u64,
    bytes_on_disk: u64,
    note: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let media = tempfile::tempdir()?;
    let media_dir = media.path().to_path_buf();
    let audit_path = args
        .audit_out
        .clone()
        .unwrap_or_else(|| media_dir.join("audit.jsonl"));
    // Never delete or overwrite what the user named: an existing trail is appended to only
    // when asked (a torn last line is handled by the sink).
    if args.audit_out.is_some() && !args.append && audit_path.exists() {
        return Err(format!(
            "{} exists; pass --append to add to it, or name a new file",
            audit_path.display()
        )
        .into());
    }
    let audit: Arc<dyn AuditSink> = Arc::new(JsonLinesSink::open(&audit_path)?);

    // The webhook first, so the emulator knows where to post.
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let webhook_addr = listener.local_addr()?;

    let (endpoint, token, emulator) = match &args.graph_url {
        Some(url) => {
            let token = std::env::var(&args.token_env)
                .map_err(|_| format!("--graph-url needs a bearer token in ${}", args.token_env))?;
            (Endpoint::custom(url)?, AccessToken::new(token), None)
        }
        None => {
            let emulator = Emulator::start().await?;
            let callback = args
                .callback_url
                .clone()
                .unwrap_or_else(|| format!("http://{webhook_addr}/api/calls"));
            emulator.set_callback_url(callback);
            (
                emulator.endpoint(),
                AccessToken::new("emulator-token"),
                Some(emulator),
            )
        }
    };

    let transport = ReqwestTransport::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let config = DriverConfig::default()
        .with_pending_deadline(Duration::from_secs(2))
        .with_drain_deadline(Duration::from_secs(5))
        .with_retry(
            RetryPolicy::default()
                .with_deadline(Duration::from_secs(15))
                .with_max_retry_after(Duration::from_secs(5)),
        );
    let graph = Graph::new(transport, token).with_endpoint(endpoint.clone());
    let (driver, mut events) = Driver::new(graph, audit.clone(), config);

    // The webhook: in production, validate the Bot Framework JWT first (feature `jwt`,
    // `webhook::BotFrameworkValidator`). The emulator posts over loopback without a token.
    let hub = driver.hub().clone();
    let app = Router::new()
        .route(
            "/api/calls",
            post(
                |State(hub): State<recording_status::driver::Hub>, body: Bytes| async move {
                    let proof = Authenticated::danger_authenticated_elsewhere(
                        "compliance_bot example: loopback emulator, no JWT",
                    );
                    match hub.deliver(&proof, &body) {
                        Ok(_) => StatusCode::ACCEPTED,
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                },
            ),
        )
        .with_state(hub);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    println!(
        "compliance_bot: {} calls against {} (webhook http://{webhook_addr}/api/calls, audit {})",
        args.calls,
        endpoint,
        audit_path.display()
    );

    // Late completions: Graph shows `recording` for a call that retains nothing; say so.
    let late_count = Arc::new(AtomicUsize::new(0));
    let reconciler = {
        let (driver, late_count) = (driver.clone(), late_count.clone());
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    DriverEvent::LateCompletion(l) => {
                        late_count.fetch_add(1, Ordering::SeqCst);
                        if let Err(e) = driver.reconcile(&l, EndStatus::NotRecording).await {
                            eprintln!("reconcile {}: {e}", l.call_id);
                        }
                    }
                    DriverEvent::OrphanReported { call_id, .. } => {
                        eprintln!("orphaned recording call {call_id} reported");
                    }
                    _ => {}
                }
            }
        })
    };

    let done = Arc::new(AtomicUsize::new(0));
    let recording_now = Arc::new(AtomicUsize::new(0));
    let progress = {
        let (done, recording_now, total) = (done.clone(), recording_now.clone(), args.calls);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let d = done.load(Ordering::SeqCst);
                eprint!(
                    "\r  progress: {d}/{total} calls done, {} recording   ",
                    recording_now.load(Ordering::SeqCst)
                );
                let _ = std::io::stderr().flush();
                if d >= total {
                    eprintln!();
                    break;
                }
            }
        })
    };

    let mut tasks = Vec::new();
    for i in 0..args.calls {
        let id: CallId = uuid_call_id().parse()?;
        let scenario = Scenario::for_call(i);
        if let Some(emulator) = &emulator {
            emulator.script(id.as_str(), scenario.behaviors());
        }
        let (driver, dir, done, recording_now) = (
            driver.clone(),
            media_dir.clone(),
            done.clone(),
            recording_now.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let report = run_call(&driver, id.clone(), scenario, &dir, &recording_now).await;
            done.fetch_add(1, Ordering::SeqCst);
            (id, report)
        }));
    }
    let mut reports = BTreeMap::new();
    for t in tasks {
        let (id, report) = t.await?;
        reports.insert(id.to_string(), report);
    }
    progress.await?;
    // Give late notifications (TooLate scenario) time to arrive and be reconciled.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(driver);
    reconciler.abort();
    let late = late_count.load(Ordering::SeqCst);

    // ---- Summary and policy checks ----
    let mut failures = Vec::new();
    println!();
    println!(
        "{:<36}  {:<15}  {:<13}  {:>6}  {:>9}  note",
        "call", "scenario", "final state", "frames", "bytes"
    );
    for (id, r) in &reports {
        let scenario = r.scenario.map_or("-".to_owned(), |s| format!("{s:?}"));
        let state = r.final_state.map_or("-".to_owned(), |s| s.to_string());
        println!(
            "{id:<36}  {scenario:<15}  {state:<13}  {:>6}  {:>9}  {}",
            r.frames, r.bytes_on_disk, r.note
        );
        if r.bytes_on_disk != r.bytes_written {
            failures.push(format!(
                "{id}: {} bytes on disk, {} written through capabilities",
                r.bytes_on_disk, r.bytes_written
            ));
        }
        if let (Some(s), true) = (r.scenario, emulator.is_some()) {
            if !s.should_record() && r.bytes_on_disk > 0 {
                failures.push(format!(
                    "{id}: {s:?} persisted media without acknowledgement"
                ));
            }
            if s.should_record() && r.frames == 0 {
                failures.push(format!("{id}: {s:?} should have recorded"));
            }
        }
    }
    let trail = JsonLinesSink::read(&audit_path)?;
    match verify(&trail) {
        Ok(v) => println!(
            "\naudit trail: verified ({} events, {} calls, {} retention capabilities)",
            v.events, v.calls, v.retentions
        ),
        Err(violation) => {
            println!("\naudit trail: VIOLATION {violation}");
            failures.push(format!("audit: {violation}"));
        }
    }
    if let Some(emulator) = &emulator {
        let requests = emulator.requests();
        if requests.iter().any(|r| !r.authorized) {
            failures.push("a request reached Graph without a bearer token".to_owned());
        }
        let too_late = reports
            .values()
            .filter(|r| r.scenario == Some(Scenario::TooLate))
            .count();
        if late < too_late {
            failures.push(format!(
                "{late} late completions surfaced, {too_late} expected"
            ));
        }
        println!(
            "emulator: {} requests, {} notifications sent; late completions reconciled: {late}",
            requests.len(),
            emulator.notifications_sent()
        );
    }
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for r in reports.values() {
        *by_state
            .entry(r.final_state.map_or("-".to_owned(), |s| s.to_string()))
            .or_default() += 1;
    }
    println!("final states: {by_state:?}");
    server.abort();
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    if failures.is_empty() {
        println!("policy checks: all passed");
        Ok(true)
    } else {
        println!("policy checks: {} FAILED", failures.len());
        for f in &failures {
            println!("  - {f}");
        }
        Ok(false)
    }
}

async fn run_call(
    driver: &Driver<ReqwestTransport>,
    id: CallId,
    scenario: Scenario,
    dir: &Path,
    recording_now: &AtomicUsize,
) -> Report {
    let mut report = Report {
        scenario: Some(scenario),
        ..Report::default()
    };
    // One value per Graph call: a second `call` for the same id is refused.
    let call = match driver.call(id.clone()) {
        Ok(call) => call,
        Err(e) => {
            report.note = format!("not opened: {e}");
            return report;
        }
    };
    let started = match driver.begin_recording(call).await {
        Ok(s) => s,
        Err(not_sent) => {
            report.final_state = Some(not_sent.call.state());
            report.note = format!("not sent: {}", not_sent.error);
            return report;
        }
    };
    let call = match started {
        Started::Recording(call) => call,
        Started::Failed(call) => {
            report.final_state = Some(CallState::Failed);
            report.note = call.reason().to_string();
            // The Teams call goes on; only recording failed. Keep nothing that can retain.
            drop(call);
            return report;
        }
        _ => {
            report.note = "unexpected outcome".to_owned();
            return report;
        }
    };

    // Several media tasks, each writing only through its own retention capability.
    recording_now.fetch_add(1, Ordering::SeqCst);
    let mut media = Vec::new();
    let mut paths = Vec::new();
    for stream in 0..STREAMS {
        let handle = match call.retention_handle() {
            Ok(h) => h,
            Err(e) => {
                report.note = format!("audit refused retention: {e}");
                break;
            }
        };
        let path = dir.join(format!("{id}-{stream}.raw"));
        paths.push(path.clone());
        media.push(tokio::spawn(async move {
            let file = std::fs::File::create(&path)?;
            let mut writer = RetentionWriter::new(handle, std::io::BufWriter::new(file));
            let frame = [0x5Au8; FRAME];
            let mut frames = 0u64;
            loop {
                tokio::select! {
                    () = writer.capability().stopping() => break,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {
                        writer.write_all(&frame)?;
                        frames += 1;
                    }
                }
            }
            drop(writer.finish()?); // flush to disk, then end the capability
            Ok::<u64, std::io::Error>(frames)
        }));
    }
    tokio::time::sleep(RECORD_FOR).await;
    let outcome = if scenario == Scenario::BreaksMidway {
        driver
            .report_failure(call, "simulated media pipeline failure")
            .await
            .map(|c| c.state())
    } else {
        driver.stop_recording(call).await.map(|c| c.state())
    };
    recording_now.fetch_sub(1, Ordering::SeqCst);
    for m in media {
        match m.await {
            Ok(Ok(frames)) => report.frames += frames,
            Ok(Err(e)) => report.note = format!("media task: {e}"),
            Err(e) => report.note = format!("media task panicked: {e}"),
        }
    }
    report.bytes_written = report.frames * FRAME as u64;
    report.bytes_on_disk = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    match outcome {
        Ok(state) => report.final_state = Some(state),
        Err(e) => {
            report.final_state = Some(CallState::Failed);
            report.note = e.to_string();
        }
    }
    report
}

/// Graph call ids are GUIDs.
fn uuid_call_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
