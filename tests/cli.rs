//! The `chatgate` binary as an operator meets it: what it says at startup,
//! and what it refuses before serving.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `chatgate` command with a clean environment (plus `env`), listening on
/// a free loopback port.
fn chatgate(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatgate"));
    command.env_clear().args(["--bind", "127.0.0.1:0"]);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs a command that must stop by itself (a refusal), within 30 s.
fn run_to_exit(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn chatgate: {e}"));
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    wait.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("chatgate did not exit within 30 s"))
        .unwrap_or_else(|e| panic!("wait: {e}"))
}

/// Starts the server, returns its stdout lines up to and including the
/// "chatgate listening" line, then kills it.
fn startup_output(mut command: Command) -> Vec<String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn chatgate: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match receive.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let listening = line.starts_with("chatgate listening");
                lines.push(line);
                if listening {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("chatgate did not start; output so far: {lines:#?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// The effective rate limits are logged at startup, one line, with the
/// configured entries merged over the built-in ones.
#[test]
fn startup_logs_the_effective_rate_limits() {
    let lines = startup_output(chatgate(&[
        ("RUST_LOG", "info"),
        ("RATE_LIMITS", "message:send=3/min"),
    ]));
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("effective rate limits"))
        .collect();
    assert_eq!(found.len(), 1, "{lines:#?}");
    assert!(
        found[0].contains("channel:join=10/min,message:send=3/min,default=100/min"),
        "{found:?}"
    );
}

/// Regression: `RATE_LIMITS=message:sned=3/min` started a server with
/// `message:send` still at 60/min.
#[test]
fn a_misspelt_rate_limit_event_stops_startup() {
    let output = run_to_exit(chatgate(&[("RATE_LIMITS", "message:sned=3/min")]));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did you mean message:send?"), "{stderr}");
}

/// Regression: `RUST_LOG=verbose` (read as a target name) silently turned
/// off every log line, the dev-mode warning included.
#[test]
fn an_invalid_rust_log_stops_startup() {
    for bad in ["verbose", "chatgate=loud"] {
        let output = run_to_exit(chatgate(&[("RUST_LOG", bad)]));
        assert_eq!(output.status.code(), Some(2), "{bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid RUST_LOG"), "{bad}: {stderr}");
    }
}

/// A valid `RUST_LOG` still starts the server, and the dev-mode warning shows.
#[test]
fn a_valid_rust_log_starts_with_the_dev_mode_warning() {
    let lines = startup_output(chatgate(&[("RUST_LOG", "warn")]));
    assert!(
        lines.iter().any(|l| l.contains("WARN")),
        "no warning: {lines:#?}"
    );
}
