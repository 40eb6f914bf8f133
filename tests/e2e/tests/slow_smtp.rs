//! Two email-service instances on one PostgreSQL database, a short send
//! lease, and an SMTP server that answers each message only after several
//! lease durations: every send outlives its lease, the other instance
//! claims the entry meanwhile, and still every user gets exactly one email.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Stack, Wiring};
use testkit::{MailDev, Persistence, Postgres, RedisServer, SlowSmtp};

const USERS: u64 = 60;

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
    let done = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(done["progress"]["sent"], USERS, "{done}");

    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for id in smtp.message_ids() {
        *copies.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(copies.len() as u64, USERS, "one Message-ID per user");
}
