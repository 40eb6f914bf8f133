//! `testkit::ready` and `scripts/ready.sh` fail in the same words: each
//! failure is provoked in both and their lines compared. The checks are
//! tried against a server that greets and a port where nothing listens.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::ready::{http_ready, smtp_greets, wait_until, NotReady};
use testkit::{free_port, SlowSmtp};

/// What `scripts/ready.sh`'s `wait_until NAME <pid of PROGRAM> TIMEOUT
/// false` writes to stderr, PROGRAM being a shell command run in the
/// background.
fn shell_line(name: &str, program: &str, timeout_s: u64) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ready.sh");
    let output = Command::new("bash")
        .args([
            "-c",
            r#"source "$1"; sh -c "$3" & p=$!; wait_until "$2" "$p" "$4" false; s=$?; kill "$p" 2>/dev/null; exit "$s""#,
            "bash",
        ])
        .arg(script)
        .args([name, program, &timeout_s.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert!(!output.status.success(), "wait_until succeeded");
    String::from_utf8(output.stderr)
        .expect("UTF-8")
        .trim_end()
        .to_string()
}

fn spawn(program: &str) -> Child {
    Command::new("sh").args(["-c", program]).spawn().expect("sh runs")
}

#[test]
fn an_exited_process_is_named_alike() {
    let mut child = spawn("exit 3");
    let error = wait_until("some-service", &mut child, Duration::from_secs(5), || false).unwrap_err();
    assert_eq!(
        error,
        NotReady::Exited {
            name: "some-service".into()
        }
    );
    assert_eq!(error.to_string(), "some-service exited while starting");
    assert_eq!(error.to_string(), shell_line("some-service", "exit 3", 5));
}

#[test]
fn a_timeout_is_named_alike() {
    let mut child = spawn("exec sleep 30");
    let error = wait_until("some-service", &mut child, Duration::from_secs(1), || false).unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(error.to_string(), "some-service not ready after 1s");
    assert_eq!(error.to_string(), shell_line("some-service", "exec sleep 30", 1));
}

#[test]
fn a_check_that_passes_ends_the_wait() {
    let smtp = SlowSmtp::start(Duration::ZERO);
    let mut child = spawn("exec sleep 30");
    let waited = wait_until("smtp", &mut child, Duration::from_secs(5), || {
        smtp_greets(smtp.port())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(waited, Ok(()));
}

#[test]
fn nothing_listening_is_not_ready() {
    let port = free_port();
    assert!(!smtp_greets(port));
    assert!(!http_ready(&format!("http://127.0.0.1:{port}/ready")));
}
