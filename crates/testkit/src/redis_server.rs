//! A private `redis-server` per test.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::ready::wait_until;

/// Whether the server keeps its data across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: the fastest, for tests that never restart Redis.
    None,
    /// Append-only file, fsynced on every write, so a SIGKILL loses nothing
    /// that was acknowledged (the tests count on exact survival).
    AofAlways,
    /// Append-only file fsynced every second, as a deployment runs it.
    AofEverySec,
}

/// The memory ceiling of a test server, with `maxmemory-policy noeviction`,
/// as every Redis that comms starts has one: a write past it is refused
/// (`OOM`), never an entry silently evicted. Far above what a test holds.
pub const MAXMEMORY: &str = "1gb";

/// A `redis-server` process on a free loopback port, killed when dropped.
pub struct RedisServer {
    port: u16,
    /// Its `maxmemory` (`noeviction`).
    maxmemory: String,
    dir: tempfile::TempDir,
    persistence: Persistence,
    password: Option<String>,
    /// Whether it speaks TLS only (certificates in `dir`).
    tls: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server without persistence.
    pub fn start() -> Self {
        Self::start_with(Persistence::None, None)
    }

    /// Starts a server with the given persistence and, optionally, a password.
    pub fn start_with(persistence: Persistence, password: Option<&str>) -> Self {
        Self::start_limited(persistence, password, MAXMEMORY)
    }

    /// Starts a server with the given persistence, password and
    /// `maxmemory` (e.g. `"64mb"`), for tests of what comms does near
    /// or at Redis' memory ceiling.
    pub fn start_limited(persistence: Persistence, password: Option<&str>, maxmemory: &str) -> Self {
        let mut server = Self {
            port: free_port(),
            maxmemory: maxmemory.to_string(),
            dir: tempfile::tempdir().expect("temporary directory"),
            persistence,
            password: password.map(str::to_string),
            tls: false,
            child: None,
        };
        server.spawn();
        server
    }

    /// Starts a server that speaks only TLS, with a certificate for
    /// `localhost` and `127.0.0.1` signed by a fresh test CA (made with the
    /// `openssl` command); [`RedisServer::ca_file`] is that CA.
    pub fn start_tls(password: &str) -> Self {
        let mut server = Self {
            port: free_port(),
            maxmemory: MAXMEMORY.to_string(),
            dir: tempfile::tempdir().expect("temporary directory"),
            persistence: Persistence::None,
            password: Some(password.to_string()),
            tls: true,
            child: None,
        };
        make_certificates(server.dir.path());
        server.spawn();
        server
    }

    /// The CA certificate (PEM) of a TLS server.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `redis://` URL for it, with the password if one is set.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.tls { "localhost" } else { "127.0.0.1" };
        match &self.password {
            Some(password) => format!("{scheme}://:{password}@{host}:{}", self.port),
            None => format!("{scheme}://{host}:{}", self.port),
        }
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (so an AOF
    /// is replayed).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Every entry of `stream`, as `redis-cli --raw XRANGE` prints them
    /// (an entry's id, then its fields and values, a line each); for test
    /// assertions that should not depend on the code under test.
    pub fn entries(&self, stream: &str) -> String {
        assert!(
            !self.tls && self.password.is_none(),
            "entries() reads a plain, open server"
        );
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw", "XRANGE", stream, "-", "+"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs one command with `redis-cli`-like simplicity over a raw socket
    /// and returns the first line of the reply; for test assertions that
    /// should not depend on the code under test.
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|error| panic!("test redis on port {}: {error}", self.port))
    }

    /// [`RedisServer::command`], with a failure to connect, write or read
    /// returned: a server still starting (or gone) is not a test's panic.
    fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        assert!(!self.tls, "command() speaks plain RESP; not for a TLS server");
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        let mut request = String::new();
        if let Some(password) = &self.password {
            request.push_str(&resp(&["AUTH", password]));
        }
        request.push_str(&resp(args));
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if self.password.is_some() {
            reader.read_line(&mut line)?;
            line.clear();
        }
        reader.read_line(&mut line)?;
        let line = line.trim_end().to_string();
        if let Some(len) = line.strip_prefix('$').and_then(|n| n.parse::<i64>().ok()) {
            if len < 0 {
                return Ok(String::new());
            }
            let mut value = String::new();
            reader.read_line(&mut value)?;
            return Ok(value.trim_end().to_string());
        }
        Ok(line)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            let dir = self.dir.path();
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &self.port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(dir.join("server.crt"))
            .arg("--tls-key-file")
            .arg(dir.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.crt"));
        } else {
            cmd.arg("--port").arg(self.port.to_string());
        }
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .args(["--maxmemory", &self.maxmemory, "--maxmemory-policy", "noeviction"]);
        match self.persistence {
            Persistence::None => {
                cmd.args(["--appendonly", "no"]);
            }
            Persistence::AofAlways => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
            }
            Persistence::AofEverySec => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"]);
            }
        }
        if let Some(password) = &self.password {
            cmd.arg("--requirepass").arg(password);
        }
        // PING, not a connection: it refuses commands while it replays its
        // AOF.
        let child = spawn_redis(&mut cmd, &self.dir.path().join("redis.log"), || {
            self.answers_ping()
        });
        self.child = Some(child);
    }
}

/// Spawns `cmd` (a `redis-server` that writes to its own log file), then
/// waits up to 10 s until `answers` (its PING) holds, panicking with the
/// last lines of `log` otherwise. A lone server and a cluster's master
/// start through this one function, so that both fail in the same words.
pub(crate) fn spawn_redis(cmd: &mut Command, log: &Path, answers: impl FnMut() -> bool) -> Child {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
        });
    wait_until("redis-server", &mut child, Duration::from_secs(10), answers)
        .unwrap_or_else(|error| error.panic_with_log(log));
    child
}

impl RedisServer {
    fn answers_ping(&self) -> bool {
        if !self.tls {
            return self.try_command(&["PING"]).is_ok_and(|reply| reply == "+PONG");
        }
        let mut cli = Command::new("redis-cli");
        cli.args(["--tls", "--cacert"]).arg(self.ca_file()).args([
            "-p",
            &self.port.to_string(),
            "--no-auth-warning",
        ]);
        if let Some(password) = &self.password {
            cli.args(["-a", password]);
        }
        cli.arg("PING")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "PONG")
    }
}

/// A test CA and a server certificate for `localhost`/`127.0.0.1` in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("cannot run openssl (apt-get install openssl)");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=comms test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1").expect("write san.cnf");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn resp(args: &[&str]) -> String {
    use std::fmt::Write;

    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n{}\r\n", arg.len(), arg);
    }
    out
}
