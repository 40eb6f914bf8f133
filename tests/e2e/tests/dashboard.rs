//! The dashboard in a real browser (`tests/browser/dashboard.mjs`, headless
//! chromium through playwright-core) against a stack on free ports: a
//! template error shown before anything is sent, a campaign created from
//! the form followed to `completed` live, without a reload.

use std::process::Command;

use e2e::Stack;

const USERS: u64 = 300;

#[test]
fn a_campaign_created_in_the_browser_completes_on_the_page_live() {
    let stack = Stack::start(USERS);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = Command::new("node")
        .current_dir(root)
        .arg("tests/browser/dashboard.mjs")
        .arg(format!("http://127.0.0.1:{}", stack.port("campaign-service")))
        .arg(USERS.to_string())
        .output()
        .expect("node runs (./test.sh installs it, with chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        stack.log_tails()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["sent"], USERS, "{seen}");
    assert_eq!(seen["sameDocument"], true, "{seen}");
}
