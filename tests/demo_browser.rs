//! The demo chat page, end to end in a real browser: headless Chromium (the
//! system's `/usr/bin/chromium`, or `$CHROMIUM_PATH`) driven by
//! `playwright-core` through `tests/browser/demo.mjs`, against chatgate
//! running in-process.
//!
//! Two browser contexts (alice and bob) chat with each other, see each other
//! online and typing, alice sees `RATE_LIMITED` shown, and bob closing his
//! window takes him offline on alice's page. Screenshots land in
//! `tests/artifacts/` (git-ignored).
//!
//! Needs `apt-get install chromium`, `npm ci --prefix tests/browser` and the
//! demo's socket.io-client (`npm ci --prefix demo`, before the build);
//! `scripts/test` installs all three.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chatgate::config::{Config, RateLimits};
use chatgate::server::Server;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// How long the whole browser run may take.
fn run_timeout() -> Duration {
    std::env::var("CHATGATE_TEST_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
        * 24
}

#[tokio::test]
async fn two_browsers_chat_through_the_demo_page() {
    let driver_dir = root().join("tests/browser");
    assert!(
        driver_dir.join("node_modules/playwright-core").is_dir(),
        "{} is missing: run `./scripts/test` or `npm ci --prefix tests/browser` first",
        driver_dir.join("node_modules").display()
    );
    assert!(
        chromium().is_file(),
        "{} is missing: install Chromium (`apt-get install chromium`) or set CHROMIUM_PATH",
        chromium().display()
    );
    assert!(
        chatgate::api::demo::client_bundled(),
        "the demo page has no socket.io-client: run `npm ci --prefix demo`, then rebuild"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let config = Config {
        bind: listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}")),
        // Low enough for the page to run into it within the test.
        rate_limits: RateLimits::parse("message:send=3/min")
            .unwrap_or_else(|e| panic!("rate limits: {e:?}")),
        ..Config::default()
    };
    let (server, _task) = Server::spawn(config, listener).unwrap_or_else(|e| panic!("spawn: {e}"));

    let artifacts = root().join("tests/artifacts");
    let driver = tokio::process::Command::new("node")
        .arg(driver_dir.join("demo.mjs"))
        .arg(server.url())
        .arg(&artifacts)
        .env("CHROMIUM_PATH", chromium())
        .current_dir(&driver_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node ({e}); is Node.js installed?"));
    let output = match tokio::time::timeout(run_timeout(), driver.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("the browser driver failed to run: {e}"),
        Err(_) => panic!("the browser run took longer than {:?}", run_timeout()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no result line from the driver; stdout:\n{stdout}"));
    assert!(
        output.status.success() && result["ok"] == true,
        "the browser scenario failed at {:?}: {}\n(screenshots in {})",
        result["step"],
        result["error"].as_str().unwrap_or_default(),
        artifacts.display()
    );
    for shot in ["demo-alice.png", "demo-bob.png", "demo-after-bob-left.png"] {
        let size = std::fs::metadata(artifacts.join(shot)).map_or(0, |m| m.len());
        assert!(size > 1000, "screenshot {shot} missing or empty");
    }
}
