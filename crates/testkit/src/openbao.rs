//! A private OpenBao dev server per test: the open fork of Vault, with
//! Vault's HTTP API and its KV v2 engine mounted at `secret/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::ready::{http_ready, wait_until};

/// An OpenBao dev server (everything in memory) on a free loopback port,
/// killed when dropped.
pub struct OpenBao {
    port: u16,
    token: String,
    bao: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl OpenBao {
    /// Starts a dev server whose root token is `token`.
    pub fn start(token: &str) -> Self {
        let bao = bao_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let log_path = dir.path().join("openbao.log");
        let log = std::fs::File::create(&log_path).expect("openbao log");
        let mut child = Command::new(&bao)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", dir.path())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e})", bao.display()));
        let addr = address(port);
        let health = format!("{addr}/v1/sys/health");
        // Ready once it is healthy (as start.sh checks it) and its KV engine
        // is mounted, a moment later.
        wait_until("openbao", &mut child, Duration::from_secs(20), || {
            http_ready(&health)
                && String::from_utf8_lossy(
                    &run_bao(&bao, &addr, token, dir.path(), &["secrets", "list"]).stdout,
                )
                .contains("secret/")
        })
        .unwrap_or_else(|error| error.panic_with_log(&log_path));
        Self {
            port,
            token: token.to_string(),
            bao,
            child,
            dir,
        }
    }

    /// Its address (`VAULT_ADDR`).
    pub fn addr(&self) -> String {
        address(self.port)
    }

    /// Its root token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Writes `pairs` as the KV v2 secret at `path` (e.g.
    /// `secret/comms/dev/user-service`), replacing what was there.
    pub fn put(&self, path: &str, pairs: &[(&str, &str)]) {
        let mut args = vec!["kv".to_string(), "put".to_string(), path.to_string()];
        args.extend(pairs.iter().map(|(key, value)| format!("{key}={value}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = self.bao(&args);
        assert!(
            output.status.success(),
            "bao kv put {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn bao(&self, args: &[&str]) -> std::process::Output {
        run_bao(&self.bao, &self.addr(), &self.token, self.dir.path(), args)
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address of a server on `port`.
fn address(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Runs the `bao` CLI against the server at `addr` with `token`.
fn run_bao(bao: &Path, addr: &str, token: &str, home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bao)
        .args(args)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env("HOME", home)
        .output()
        .expect("run bao")
}

/// `bao` from `BAO_BIN`, else the project's own `tools/openbao` (installed
/// by `./test.sh`), else `PATH`.
fn bao_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BAO_BIN") {
        return path.into();
    }
    let own = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/openbao/bin/bao");
    if own.exists() {
        own
    } else {
        "bao".into()
    }
}
