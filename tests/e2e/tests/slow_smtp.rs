//! Two email-service instances on one PostgreSQL database, a short send
//! lease, and an SMTP server that answers each message only after several
//! lease durations. Every request is delivered twice while its first send
//! runs (a copy of each `comms:emails` entry, as a redelivery would bring),
//! so the instances hold the same ids at once, and each copy is claimed
//! again and again while that send outlives its lease many times over:
//! only the renewed, fenced lease keeps a second send from starting, and
//! still every user gets exactly one email.

use std::collections::BTreeMap;
use std::time::Duration;

use contracts::EMAILS;
use e2e::{Stack, Wiring};
use testkit::{MailDev, Persistence, Postgres, RedisServer, SlowSmtp};

const USERS: u64 = 60;

/// Copies every entry of `stream`, fields and all, to its end, in one
/// script; returns how many.
const COPY_ALL: &str = "local entries = redis.call('XRANGE', KEYS[1], '-', '+')
for _, entry in ipairs(entries) do redis.call('XADD', KEYS[1], '*', unpack(entry[2])) end
return #entries";

#[test]
fn a_slow_server_and_two_senders_send_each_email_once() {
    let postgres = Postgres::start();
    let smtp = SlowSmtp::start(Duration::from_secs(4));
    let env = vec![
        ("EMAIL_DATABASE_URL".to_string(), postgres.database("email")),
        ("EMAIL_LEASE_MS".to_string(), "1000".to_string()),
        ("SMTP_PORT".to_string(), smtp.port().to_string()),
    ];
    let mut stack = Stack::start_on(
        USERS,
        RedisServer::start_with(Persistence::AofEverySec, None),
        MailDev::start(),
        Wiring::Environment,
        env,
    );
    stack.start_extra_instance("email-service");

    let id = stack.create_campaign("slow", "Hi {{ name }}", "For {{ email }}");
    stack.wait_for("every email requested", Duration::from_secs(30), || {
        stack.entries_added(EMAILS) == USERS
    });
    // Well within the first send's 4 s: every id is held by the sender of
    // its first entry when its copy arrives.
    let copied = stack.redis_cli(&["EVAL", COPY_ALL, "1", EMAILS]);
    assert_eq!(copied, USERS.to_string(), "no request was done yet");

    let done = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(done["progress"]["sent"], USERS, "{done}");
    // Every copy read and answered too: any second send it could cause is
    // made by now.
    stack.wait_for("every copy answered", Duration::from_secs(120), || {
        let info = stack.redis_cli(&["XINFO", "GROUPS", EMAILS]);
        let fields: Vec<&str> = info.lines().collect();
        let group = fields
            .iter()
            .position(|line| *line == email_service::GROUP)
            .expect("email-service's group");
        let field = |name: &str| {
            fields[group..]
                .windows(2)
                .find(|pair| pair[0] == name)
                .map(|pair| pair[1])
        };
        field("pending") == Some("0") && field("lag") == Some("0")
    });

    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for id in smtp.message_ids() {
        *copies.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(copies.len() as u64, USERS, "one Message-ID per user");
}
