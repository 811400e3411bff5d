//! A small but realistic compliance-recording bot.
//!
//! It starts the crate's Graph emulator (or talks to `--graph-url`) and its own notification
//! webhook on 127.0.0.1, then runs many concurrent simulated calls through mixed scenarios:
//! immediate completion, `running` operations settled by notifications (duplicated, out of
//! order, upper-case dash-less ids, PascalCase statuses), throttling with both `Retry-After`
//! forms, failed operations, `8506`, server errors, malformed bodies, slow answers, operations
//! that complete only after the bot gave up, and recordings that break half way. Each recording
//! call has several media tasks writing frames to temporary files, only through retention
//! capabilities (at most 1,024 files open at once). At the end it prints, per call, what Graph
//! answered and what the bot did, read from the audit trail; then it checks the rule from the
//! trail and the bytes on disk (never from timing; `report.rs`), lists which checks ran and
//! which could not (against `--graph-url`, those that need the emulator), prints wall time,
//! calls per second and peak memory, and exits non-zero if any check fails.
//!
//! ```sh
//! cargo run --example compliance_bot --features emulator,reqwest-0_13 -- --calls 50
//! ```
//!
//! Flags: `--calls N` (default 50), `--graph-url URL` (an external Graph-compatible endpoint
//! instead of the emulator), `--listen ADDR` (webhook, default 127.0.0.1:0), `--callback-url
//! URL` (what the emulator posts notifications to; default the webhook), `--audit-out FILE`
//! (JSON lines; default a temporary file; an existing file is refused, never deleted),
//! `--append` (add to an existing `--audit-out` trail, a torn last line included; the calls
//! an earlier run left open, because it crashed or was killed, are recovered first:
//! `Driver::recover` reports each to Graph),
//! `--token-env VAR` (bearer token for `--graph-url`,
//! default `GRAPH_TOKEN`).
//!
//! Ctrl-C or `SIGTERM` stops the instance cleanly (`Driver::shutdown`): no new recording
//! begins, every recording call is stopped and reported, what Graph has not settled is
//! reported `failed`, and the trail is synced; the bot then checks the trail and exits 0 if the
//! rule held and every call was closed.

mod report;
mod scenario;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use graph_emulator::Emulator;
use recording_status::audit::{AuditSink, JsonLinesSink, verify};
use recording_status::auth::Authenticated;
use recording_status::driver::RetryPolicy;
use recording_status::driver::{
    Driver, DriverConfig, DriverEvent, EndStatus, Hub, ShutdownReport, Started,
};
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::webhook::{AuthError, BotFrameworkValidator, JwksKeys};
use recording_status::{AccessToken, CallId, Endpoint, Graph, RetentionWriter};
use tokio::sync::Semaphore;

use crate::report::{CallRun, EmulatorView, LateView, Run};

/// How long a shutdown gives the media tasks to end before their capabilities are revoked.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
use crate::scenario::Scenario;

/// Media tasks per recording call, and how long a recording lasts.
const STREAMS: usize = 3;
/// The app id the emulator's notification tokens are addressed to, unless `--app-id` is given.
const EXAMPLE_APP_ID: &str = "5d1b6c29-0000-4000-8000-c0ffee000001";
/// How many more times a reconciliation that got no answer is tried.
const RECONCILE_RETRIES: usize = 3;
/// When the emulator rotates its signing key.
const ROTATE_AFTER: Duration = Duration::from_millis(1_200);
/// Media files open at once across all calls: a bot at 10,000 calls must not run out of file
/// descriptors. A media task waits for a slot; if the call stops first, it writes nothing.
const MAX_OPEN_MEDIA_FILES: usize = 1_024;
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
    app_id: Option<String>,
    openid_url: Option<String>,
    insecure_unauthenticated_webhook: bool,
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
        app_id: None,
        openid_url: None,
        insecure_unauthenticated_webhook: false,
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
            "--app-id" => args.app_id = Some(value()?),
            "--openid-url" => args.openid_url = Some(value()?),
            "--insecure-unauthenticated-webhook" => args.insecure_unauthenticated_webhook = true,
            "-h" | "--help" => {
                return Err(
                    "usage: compliance_bot [--calls N] [--graph-url URL] [--listen ADDR] \
                     [--callback-url URL] [--audit-out FILE [--append]] [--token-env VAR] \
                     [--app-id ID --openid-url URL | --insecure-unauthenticated-webhook]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown flag {other}; see --help")),
        }
    }
    if args.graph_url.is_some() && args.callback_url.is_some() {
        return Err(
            "--callback-url applies to the built-in emulator only; against --graph-url, \
                    Graph posts to the callback URI the call was answered with"
                .to_owned(),
        );
    }
    if args.graph_url.is_some()
        && (args.app_id.is_none() || args.openid_url.is_none())
        && !args.insecure_unauthenticated_webhook
    {
        return Err("--graph-url needs --app-id and --openid-url to authenticate notifications \
                    (Bot Framework's is https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration), \
                    or --insecure-unauthenticated-webhook to accept them unauthenticated"
            .to_owned());
    }
    if args.calls == 0 || args.calls > 10_000 {
        return Err("--calls must be between 1 and 10000".to_owned());
    }
    Ok(args)
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
    // With --append, the calls an earlier run left open (it crashed, or was killed) are closed
    // first; the checks judge this run's events: those after the trail's earlier ones.
    let left_open = if audit_path.exists() {
        match verify(&JsonLinesSink::read(&audit_path)?.events) {
            Ok(verified) => verified.open,
            Err(violation) => {
                return Err(format!("the trail to append to breaks the rule: {violation}").into());
            }
        }
    } else {
        Vec::new()
    };
    let audit: Arc<dyn AuditSink> = Arc::new(JsonLinesSink::open(&audit_path)?);

    // The webhook first, so the emulator knows where to post.
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let webhook_addr = listener.local_addr()?;

    let app_id = args
        .app_id
        .clone()
        .unwrap_or_else(|| EXAMPLE_APP_ID.to_owned());
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
            // The emulator signs every notification like Bot Framework, for this app id.
            emulator.sign_notifications_for(app_id.clone());
            (
                Endpoint::custom(&emulator.base_url())?,
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
    let graph = Graph::new(transport.clone(), token).with_endpoint(endpoint.clone());
    let (driver, mut events) = Driver::new(graph, audit.clone(), config);
    if !left_open.is_empty() {
        let recovery = driver.recover(&left_open).await;
        println!(
            "recovered {} calls the previous run left open: {} reported, {} unreported",
            left_open.len(),
            recovery.reported,
            recovery.unreported.len()
        );
        for u in &recovery.unreported {
            println!("  {} ({}): {}", u.call_id, u.status, u.error);
        }
    }
    let earlier_events = JsonLinesSink::read(&audit_path)?.len();

    // The webhook's keys: Bot Framework's (or the emulator's) OpenID configuration and JWKS,
    // fetched through the same transport, refreshed hourly and on an unknown `kid`. Rotations
    // are recorded in the trail.
    let openid_url = match (&emulator, &args.openid_url) {
        (_, Some(url)) => Some(url.clone()),
        (Some(emulator), None) => Some(emulator.openid_configuration_url()),
        (None, None) => None,
    };
    let validator = match openid_url {
        Some(url) if !args.insecure_unauthenticated_webhook => {
            // The default configuration: the emulator rotates its key a second into the run,
            // and a key published after the first fetch is fetched at once.
            let keys = JwksKeys::fetch(transport.clone(), &url)
                .await?
                .with_audit(audit.clone());
            tokio::spawn({
                let keys = keys.clone();
                async move { keys.refresh_periodically().await }
            });
            Some(Arc::new(BotFrameworkValidator::new(app_id.clone(), keys)))
        }
        _ => {
            println!(
                "WARNING: --insecure-unauthenticated-webhook: notifications are accepted without \
                 authentication; the trail marks each one (`via: elsewhere: …`)"
            );
            None
        }
    };
    let webhook = Webhook {
        hub: driver.hub().clone(),
        validator,
        refused: Arc::new(AtomicUsize::new(0)),
    };
    let refused = webhook.refused.clone();
    let app = Router::new()
        .route("/api/calls", post(Webhook::handle))
        .with_state(webhook);
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
    let late = Arc::new(Mutex::new(LateView::default()));
    let reconciler = {
        let (driver, late) = (driver.clone(), late.clone());
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    DriverEvent::LateCompletion(l) => {
                        // Under load a report may go unanswered: `reconcile` may be called
                        // again with the same `late`, so try a few times.
                        let mut result = driver.reconcile(&l, EndStatus::NotRecording).await;
                        for _ in 0..RECONCILE_RETRIES {
                            match &result {
                                Err(e) if e.is_unknown_outcome() => {
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                    result = driver.reconcile(&l, EndStatus::NotRecording).await;
                                }
                                _ => break,
                            }
                        }
                        let mut late = late.lock().unwrap_or_else(|e| e.into_inner());
                        late.surfaced += 1;
                        if let Err(e) = result {
                            late.reconcile_failures.push(format!("{}: {e}", l.call_id));
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

    // Ctrl-C or SIGTERM: stop the instance (the calls' own tasks then end: their begins are
    // refused and their stops find the calls stopped).
    let stopping = Arc::new(AtomicBool::new(false));
    let shutdown = {
        let (driver, stopping) = (driver.clone(), stopping.clone());
        tokio::spawn(async move {
            stop_requested().await;
            stopping.store(true, Ordering::SeqCst);
            eprintln!("\nstopping: every recording call is stopped and reported");
            driver.shutdown(SHUTDOWN_DEADLINE).await
        })
    };

    let started_at = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let recording_now = Arc::new(AtomicUsize::new(0));
    let progress = tokio::spawn(progress_bar(
        done.clone(),
        recording_now.clone(),
        args.calls,
    ));
    let media_files = Arc::new(Semaphore::new(MAX_OPEN_MEDIA_FILES));

    let mut tasks = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        let id: CallId = uuid_call_id().parse()?;
        let scenario = emulator.as_ref().map(|emulator| {
            let scenario = Scenario::for_call(i);
            emulator.script(id.as_str(), scenario.behaviors());
            scenario
        });
        let bot = CallBot {
            driver: driver.clone(),
            dir: media_dir.clone(),
            recording_now: recording_now.clone(),
            media_files: media_files.clone(),
            breaks_midway: Scenario::breaks_midway(i),
        };
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let run = bot.run(id, scenario).await;
            done.fetch_add(1, Ordering::Relaxed);
            run
        }));
    }
    // Bot Framework rotates its keys; so does the emulator, while the calls run.
    if let Some(emulator) = &emulator {
        tokio::time::sleep(ROTATE_AFTER.saturating_sub(started_at.elapsed())).await;
        emulator.rotate_signing_key();
    }
    let mut calls = Vec::with_capacity(tasks.len());
    for t in tasks {
        calls.push(t.await?);
    }
    progress.await?;
    let elapsed = started_at.elapsed();
    if stopping.load(Ordering::SeqCst) {
        let report = shutdown.await?;
        return stopped_early(report, driver, &audit_path, earlier_events, emulator).await;
    }
    shutdown.abort();
    // Give late notifications (the TooLate script) time to arrive and be reconciled.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(driver);
    reconciler.abort();
    server.abort();
    let late = late.lock().unwrap_or_else(|e| e.into_inner()).clone();

    // ---- What happened, and whether the rule held: from the trail and the disk ----
    let view = emulator.as_ref().map(|emulator| {
        let requests = emulator.requests();
        EmulatorView {
            requests: requests.len(),
            unauthorized: requests.iter().filter(|r| !r.authorized).count(),
            notifications: emulator.notifications_sent(),
            notifications_refused: emulator.notifications_refused(),
        }
    });
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    drop(audit);
    let trail = JsonLinesSink::read(&audit_path)?;
    let run = Run {
        calls: &calls,
        trail: trail.get(earlier_events..).unwrap_or_default(),
        emulator: view,
        late,
        webhook_refused: refused.load(Ordering::Relaxed),
        authenticated: !args.insecure_unauthenticated_webhook,
    };
    let judged = report::judge(&run);
    let passed = report::print(&run, &judged);
    println!(
        "\n{} calls in {:.2} s ({:.0} calls/s), peak memory {}",
        args.calls,
        elapsed.as_secs_f64(),
        args.calls as f64 / elapsed.as_secs_f64(),
        peak_memory().unwrap_or_else(|| "unknown".to_owned())
    );
    Ok(passed)
}

/// Completes on Ctrl-C, or on `SIGTERM` (what `kill` and container runtimes send).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// After a stop request: says what the shutdown did, then checks this run's part of the trail
/// (the rule held, and no call is left open). Whether both hold.
async fn stopped_early(
    report: ShutdownReport,
    driver: Driver<ReqwestTransport>,
    audit_path: &std::path::Path,
    earlier_events: usize,
    emulator: Option<Emulator>,
) -> Result<bool, Box<dyn std::error::Error>> {
    drop(driver);
    println!(
        "stopped: {} recording calls stopped, {} unsettled requests reported failed, \
         {} reports unacknowledged, {} operations unsettled, trail {}",
        report.stopped,
        report.failed,
        report.unreported.len(),
        report.unsettled,
        if report.trail.is_none() {
            "synced"
        } else {
            "NOT synced"
        }
    );
    for u in &report.unreported {
        println!("  {} ({}): {}", u.call_id, u.status, u.error);
    }
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    let trail = JsonLinesSink::read(audit_path)?;
    let verified = verify(trail.get(earlier_events..).unwrap_or_default());
    let closed = match &verified {
        Ok(v) => {
            println!(
                "trail: the rule held over {} calls; {} left open",
                v.calls,
                v.open.len()
            );
            v.is_complete()
        }
        Err(violation) => {
            println!("trail: VIOLATION {violation}");
            false
        }
    };
    // The bot's own operations still running at the deadline have ended since (every call task
    // was awaited): what counts is that Graph was told, and that the trail closes every call.
    Ok(closed && report.unreported.is_empty() && report.trail.is_none())
}

/// The notification webhook: authenticate, then hand the body to the driver's hub.
#[derive(Clone)]
struct Webhook {
    hub: Hub,
    /// `None` only with `--insecure-unauthenticated-webhook`.
    validator: Option<Arc<BotFrameworkValidator<JwksKeys<ReqwestTransport>>>>,
    refused: Arc<AtomicUsize>,
}

impl Webhook {
    /// `202` once the hub has the body, `401` for a token that does not validate (the body is
    /// not read), `500` when no key could be had to check it, `400` for a body that is not a
    /// `commsNotifications` document.
    async fn handle(State(webhook): State<Self>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let proof = match &webhook.validator {
            Some(validator) => {
                let authorization = headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                match validator.validate_refreshing(authorization).await {
                    Ok(proof) => proof,
                    Err(e) => {
                        webhook.refused.fetch_add(1, Ordering::Relaxed);
                        eprintln!("webhook: refused a notification: {e}");
                        // No key could be had: the bot's side failed, not the sender.
                        return match e {
                            AuthError::Keys(_) => StatusCode::INTERNAL_SERVER_ERROR,
                            _ => StatusCode::UNAUTHORIZED,
                        };
                    }
                }
            }
            None => Authenticated::danger_authenticated_elsewhere(
                "compliance_bot --insecure-unauthenticated-webhook",
            ),
        };
        match webhook.hub.deliver_message(&proof, &headers, &body) {
            Ok(_) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// `done/total` on stderr, redrawn four times a second.
async fn progress_bar(done: Arc<AtomicUsize>, recording_now: Arc<AtomicUsize>, total: usize) {
    const WIDTH: usize = 30;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let d = done.load(Ordering::Relaxed);
        let filled = d * WIDTH / total.max(1);
        eprint!(
            "\r  [{}{}] {d}/{total} calls done, {} recording   ",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            recording_now.load(Ordering::Relaxed)
        );
        let _ = std::io::stderr().flush();
        if d >= total {
            eprintln!();
            break;
        }
    }
}

/// The process's peak resident memory (Linux: `VmHWM`).
fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", kib as f64 / 1024.0))
}

/// What one call's task needs: this is the part of the example a bot author copies.
struct CallBot {
    driver: Driver<ReqwestTransport>,
    dir: PathBuf,
    recording_now: Arc<AtomicUsize>,
    media_files: Arc<Semaphore>,
    /// Report `failed` half way, as a bot whose media pipeline broke would.
    breaks_midway: bool,
}

impl CallBot {
    async fn run(self, id: CallId, scenario: Option<Scenario>) -> CallRun {
        let mut run = CallRun {
            id: id.clone(),
            scenario,
            frames: 0,
            bytes_written: 0,
            bytes_on_disk: 0,
            note: String::new(),
        };
        // One value per Graph call: a second `call` for the same id is refused.
        let call = match self.driver.call(id.clone()) {
            Ok(call) => call,
            Err(e) => {
                run.note = format!("not opened: {e}");
                return run;
            }
        };
        let call = match self.driver.begin_recording(call).await {
            Ok(Started::Recording(call)) => call,
            Ok(Started::Failed(call)) => {
                // The Teams call goes on; only recording failed. Keep nothing that can retain.
                run.note = call.reason().to_string();
                return run;
            }
            Ok(_) => {
                run.note = "unexpected outcome".to_owned();
                return run;
            }
            Err(not_sent) => {
                run.note = format!("not sent: {}", not_sent.error);
                return run;
            }
        };

        // Several media tasks, each writing only through its own retention capability.
        self.recording_now.fetch_add(1, Ordering::Relaxed);
        let mut media = Vec::new();
        let mut paths = Vec::new();
        for stream in 0..STREAMS {
            let handle = match call.retention_handle() {
                Ok(h) => h,
                Err(e) => {
                    run.note = format!("audit refused retention: {e}");
                    break;
                }
            };
            let path = self.dir.join(format!("{id}-{stream}.raw"));
            paths.push(path.clone());
            let files = self.media_files.clone();
            media.push(tokio::spawn(async move {
                // A bounded number of open files: wait for a slot, unless the call stops first.
                let _slot = tokio::select! {
                    slot = files.acquire_owned() => slot.map_err(std::io::Error::other)?,
                    () = handle.stopping() => return Ok::<u64, std::io::Error>(0),
                };
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
                Ok(frames)
            }));
        }
        tokio::time::sleep(RECORD_FOR).await;
        let outcome = if self.breaks_midway {
            self.driver
                .report_failure(call, "simulated media pipeline failure")
                .await
                .map(drop)
        } else {
            self.driver.stop_recording(call).await.map(drop)
        };
        self.recording_now.fetch_sub(1, Ordering::Relaxed);
        for m in media {
            match m.await {
                Ok(Ok(frames)) => run.frames += frames,
                Ok(Err(e)) => run.note = format!("media task: {e}"),
                Err(e) => run.note = format!("media task panicked: {e}"),
            }
        }
        run.bytes_written = run.frames * FRAME as u64;
        run.bytes_on_disk = paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        if let Err(e) = outcome {
            run.note = e.to_string();
        }
        run
    }
}

/// Graph call ids are GUIDs.
fn uuid_call_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
