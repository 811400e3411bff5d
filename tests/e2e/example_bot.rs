//! The example bot as a user runs it: it never deletes or overwrites the path `--audit-out`
//! names, appends to it only when asked (a torn last line included), and the trail it leaves
//! passes the auditor.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use recording_status::CallState;
use recording_status::audit::{JsonLinesSink, verify};

use crate::support::loopback::free_port;

/// The example's binary (`target/<profile>/examples/compliance_bot`), built once per test run
/// with this test's features so that a stale binary is never the one tested.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>/deps/<test>");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut build = Command::new(cargo);
            build.args(["build", "--example", "compliance_bot", "--all-features"]);
            // What cargo sets for this test run only (the package's name, version, manifest
            // directory…): a build script that watches one of them (ring's does) would see it
            // change between this build and the `cargo test` around it, and both would rebuild
            // ring and everything above it on every run.
            for (name, _) in std::env::vars_os() {
                let set_for_the_run = name.to_str().is_some_and(|name| {
                    [
                        "CARGO_PKG_",
                        "CARGO_MANIFEST_",
                        "CARGO_CRATE_",
                        "CARGO_BIN_",
                        "CARGO_CFG_",
                    ]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                        || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"]
                            .contains(&name)
                });
                if set_for_the_run {
                    build.env_remove(name);
                }
            }
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building the example failed");
            profile_dir
                .join("examples")
                .join(format!("compliance_bot{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

fn run(args: &[&str]) -> Output {
    Command::new(example())
        .args(["--calls", "6"])
        .args(args)
        .output()
        .expect("the example runs")
}

/// What the run printed, both streams, for an assertion's message.
fn stderr(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_existing_trail_is_refused_unless_append_and_appended_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit.jsonl");
    let path = trail.to_str().unwrap();

    let first = run(&["--audit-out", path]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let before = std::fs::read(&trail).unwrap();
    assert!(!before.is_empty());

    // Named again without --append: refused with exit 2, not a byte changed.
    let refused = run(&["--audit-out", path]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--append"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&trail).unwrap(), before);

    // Tear the last line, as a power loss would, then append.
    let torn_at = before.len() - 7;
    std::fs::write(&trail, &before[..torn_at]).unwrap();
    let appended = run(&["--audit-out", path, "--append"]);
    assert_eq!(appended.status.code(), Some(0), "{}", stderr(&appended));
    let after = std::fs::read(&trail).unwrap();
    assert_eq!(&after[..torn_at], &before[..torn_at], "earlier lines kept");
    assert!(after.len() > before.len());

    // Both runs' events are read back, and the rule holds over the whole file.
    let events = JsonLinesSink::read(&trail).unwrap();
    let complete_lines = before[..torn_at].iter().filter(|&&b| b == b'\n').count();
    assert!(
        events.len() > complete_lines,
        "the second run's events follow"
    );
    let verified = verify(&events).unwrap_or_else(|v| panic!("{v:?}"));
    // The torn line was the first run's last event: the verifier may list that run's call as
    // left open (the trail no longer shows its end), never one of the second run's.
    let first_run = &events[..complete_lines];
    assert!(verified.open.len() <= 1, "{verified:?}");
    for open in &verified.open {
        assert!(
            first_run.iter().any(|e| e.call_id == open.call_id),
            "{open:?} belongs to the appended run"
        );
    }
}

#[test]
fn a_device_node_is_never_removed() {
    // `/dev/null` exists on every Unix machine; run as root, an example that removed an
    // existing path before opening it would delete the device node.
    let device = Path::new("/dev/null");
    if !device.exists() {
        return;
    }
    let refused = run(&["--audit-out", "/dev/null"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        std::fs::metadata(device).is_ok(),
        "/dev/null is still there"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::metadata(device)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
}

/// Against an external endpoint (here an emulator the test runs, which the bot cannot script
/// or inspect) the bot authenticates notifications only when told how, reports per call what
/// the endpoint answered (from the trail), and lists the checks it could not make instead of
/// passing them silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_mode_reports_what_happened_and_what_could_not_be_checked() {
    use graph_emulator::Emulator;

    let bot = example();
    let emulator = Emulator::start().await.unwrap();
    let graph_url = emulator.base_url();

    // The bot against the external endpoint, with its bearer token, off the runtime (the
    // endpoint runs on it).
    let external = |args: Vec<String>| {
        let bot = bot.clone();
        let run = move || {
            Command::new(bot)
                .args(args)
                .env("GRAPH_TOKEN", "external-token")
                .output()
                .unwrap()
        };
        async move { tokio::task::spawn_blocking(run).await.unwrap() }
    };

    // Without keys for the webhook, it refuses to start.
    let refused = external(vec![
        "--calls".into(),
        "2".into(),
        "--graph-url".into(),
        graph_url.clone(),
    ])
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--app-id and --openid-url"));

    // With them, it runs. The webhook listens where the endpoint was told to post.
    let port = free_port();
    emulator.set_callback_url(format!("http://127.0.0.1:{port}/api/calls"));
    emulator.sign_notifications_for("external-app");
    let openid = emulator.openid_configuration_url();
    let listen = format!("127.0.0.1:{port}");
    let output = external(
        [
            "--calls",
            "4",
            "--graph-url",
            &graph_url,
            "--listen",
            &listen,
            "--app-id",
            "external-app",
            "--openid-url",
            &openid,
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    let printed = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    // What the endpoint answered, per call, read from the trail.
    assert_eq!(
        printed
            .matches("rec 200 completed → notRec 200 completed")
            .count()
            + printed
                .matches("rec 200 completed → failed 200 completed")
                .count(),
        4,
        "{printed}"
    );
    // The checks that need the built-in emulator are listed as not run, not passed.
    assert_eq!(printed.matches("  not run  ").count(), 2, "{printed}");
    assert!(printed.contains("2 could not run here"), "{printed}");
    assert!(!printed.contains("FAILED"), "{printed}");
    // Everything went through the endpoint with the bot's token.
    let requests = emulator.requests();
    assert_eq!(requests.len(), 8, "a begin and an end per call");
    assert!(requests.iter().all(|r| r.authorized));
}

/// A run killed with `SIGKILL` half way (and its trail's last line torn) leaves calls open;
/// the next run with `--append` recovers them first, reporting each to Graph, and the whole
/// trail then verifies with every call closed: those the killed run left open are listed as
/// recovered and reported, apart from calls left open.
#[test]
fn a_killed_run_is_recovered_by_the_next_and_every_call_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit.jsonl");
    let path = trail.to_str().unwrap();

    let mut killed = Command::new(example())
        .args(["--calls", "1000", "--audit-out", path])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the example runs");
    // Killed once calls are recording.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let recording = std::fs::read_to_string(&trail)
            .unwrap_or_default()
            .matches("\"event\":\"retention_started\"")
            .count();
        if recording >= 200 {
            break;
        }
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(std::time::Instant::now() < deadline, "no call recorded");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    // The crash tore the last line, as a power loss would.
    let mut bytes = std::fs::read(&trail).unwrap();
    bytes.extend_from_slice(br#"{"seq":99999,"at":"2026-12-07T"#);
    std::fs::write(&trail, bytes).unwrap();
    let left = verify(&JsonLinesSink::read(&trail).unwrap()).unwrap().open;
    assert!(!left.is_empty(), "a killed run leaves calls open");
    // Calls waiting for Graph's answer, and calls recording.
    for state in [CallState::PendingRecording, CallState::Recording] {
        assert!(left.iter().any(|o| o.state == state), "none left {state}");
    }

    let restarted = run(&["--audit-out", path, "--append"]);
    assert_eq!(restarted.status.code(), Some(0), "{}", stderr(&restarted));
    assert!(
        stderr(&restarted).contains(&format!(
            "recovered {} calls the previous run left open: {} reported, 0 unreported",
            left.len(),
            left.len()
        )),
        "{}",
        stderr(&restarted)
    );

    let verified = verify(&JsonLinesSink::read(&trail).unwrap()).unwrap();
    assert!(verified.is_complete(), "left open: {:?}", verified.open);
    assert_eq!(verified.recovered.len(), left.len());
    for (recovered, open) in verified.recovered.iter().zip(&left) {
        assert_eq!(recovered.call_id, open.call_id);
        assert_eq!(recovered.state, open.state);
        assert!(recovered.reported, "{recovered:?}");
    }
}
