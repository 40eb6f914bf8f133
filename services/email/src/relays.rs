//! The relays email-service sends through ([`crate::relay_list`]), which
//! of them takes each send, and what becomes of one that fails.
//!
//! **Choice.** Each send is given a relay when its slot is reserved (so
//! that it goes through that relay's rate lane): the relays that are up
//! and have a weight take turns in proportion to their weights; while none
//! of them is up, the standbys (weight 0) in the order of the list; while
//! none at all is up, the one that has been down longest, so that a send
//! still tries it. A send that its relay's rate has no slot for within
//! the horizon comes back later and takes a turn afresh: a relay held
//! back by its rate takes less than its weight's share, and the others
//! the rest.
//!
//! **Failover.** A relay that refuses a connection, fails its greeting,
//! STARTTLS or login, refuses our sender for good, answers something that
//! is not SMTP ([`SendError::is_relay_fault`]), or goes silent after a
//! message, is down: skipped by the choice for a second, then for twice as
//! long each time it fails again (up to [`LONGEST_DOWN`]); once that time
//! is over it takes its turn again, and the first message it accepts
//! brings it back. A send that failed on it before anything was handed
//! over goes to another relay at once (its entry comes back with
//! [`eventstore::HandleError::Later`], a wait that spends none of its
//! retry budget, and is given a relay that is up); with no other relay up
//! it is retried as any transient failure. A send left uncertain on a
//! relay (the message went out, no reply came) never fails over: its
//! lease is kept, so the ledger lets no relay send it again until the
//! lease lapses.
//!
//! **Figures.** Per relay in `/metrics` (`comms_relay_up`,
//! `comms_relay_emails_total{relay,outcome}`, `comms_relay_failovers_total`)
//! and, for the dashboard, on the relays' board every second
//! ([`contracts::relays`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use contracts::relays::{RelayBoard, RelayFigures, RelayReport};
use eventstore::rate::Lane;
use tokio_util::sync::CancellationToken;

use crate::mailer::SendError;
use crate::outcome::outcome_label;
use crate::relay::Relay;
use crate::relay_list::RelaySettings;

/// How long a relay is first left alone after it failed.
pub const FIRST_DOWN: Duration = Duration::from_secs(1);
/// The longest a failing relay is left alone before it is tried again.
pub const LONGEST_DOWN: Duration = Duration::from_secs(30);
/// How often an instance reports its relays' figures.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The relays, their health and their figures.
pub struct Relays {
    each: Vec<Relay>,
    health: Vec<Mutex<Health>>,
    counts: Vec<Counts>,
    /// The turn of the next send among the relays with a weight.
    turn: AtomicU64,
}

/// Whether a relay takes mail now.
#[derive(Debug, Default)]
struct Health {
    /// Until when it is skipped; `None`: up.
    down_until: Option<Instant>,
    /// How long it is skipped after its next failure.
    next_down: Duration,
    /// Why it went down.
    error: Option<String>,
}

/// What a relay did since the start.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    failed: AtomicU64,
    failovers: AtomicU64,
}

impl Relays {
    /// The relays `settings` describe, each SMTP step bounded by
    /// `timeout`; none is asked anything yet.
    pub fn new(settings: Vec<RelaySettings>, timeout: Duration) -> Self {
        for relay in &settings {
            metrics::gauge!("comms_relay_up", "relay" => relay.name.clone()).set(1.0);
        }
        Self {
            health: settings.iter().map(|_| Mutex::default()).collect(),
            counts: settings.iter().map(|_| Counts::default()).collect(),
            each: settings
                .into_iter()
                .map(|settings| Relay::new(settings, timeout))
                .collect(),
            turn: AtomicU64::new(0),
        }
    }

    /// Opens a connection to each relay: those that do not answer are
    /// down from the start; an error (naming each relay and why) when none
    /// answers.
    pub async fn check(&self) -> anyhow::Result<()> {
        let checks = futures::future::join_all(self.each.iter().map(Relay::check)).await;
        let mut failures = Vec::new();
        for (index, check) in checks.into_iter().enumerate() {
            if let Err(error) = check {
                tracing::warn!(relay = %self.each[index].settings().name, %error, "a relay does not answer; it is down");
                failures.push(error.to_string());
                self.down(index, &error);
            }
        }
        match (failures.len() == self.each.len(), self.each.as_slice()) {
            (false, _) => Ok(()),
            (true, [one]) => anyhow::bail!(
                "cannot reach the SMTP server at {}: {}",
                one.settings().address(),
                failures.join("")
            ),
            _ => anyhow::bail!("cannot reach any SMTP relay: {}", failures.join("; ")),
        }
    }

    /// The relay `index`.
    pub fn get(&self, index: usize) -> &Relay {
        &self.each[index]
    }

    /// The relay the next send goes through (see the module's choice).
    pub fn pick(&self) -> usize {
        // One relay (the `SMTP_*` settings): nothing to choose, nothing
        // to allocate on every send.
        if self.each.len() == 1 {
            return 0;
        }
        let now = Instant::now();
        let up: Vec<bool> = self.health.iter().map(|health| lock(health).is_up(now)).collect();
        let weighted: Vec<(usize, u64)> = self
            .each
            .iter()
            .enumerate()
            .filter(|(index, relay)| up[*index] && relay.settings().weight > 0)
            .map(|(index, relay)| (index, u64::from(relay.settings().weight)))
            .collect();
        let total: u64 = weighted.iter().map(|(_, weight)| weight).sum();
        if total > 0 {
            let mut turn = self.turn.fetch_add(1, Ordering::Relaxed) % total;
            for (index, weight) in weighted {
                if turn < weight {
                    return index;
                }
                turn -= weight;
            }
        }
        if let Some(standby) = up.iter().position(|up| *up) {
            return standby;
        }
        (0..self.each.len())
            .min_by_key(|index| lock(&self.health[*index]).down_until)
            .unwrap_or(0)
    }

    /// The rate lane of relay `index`, if it has a rate.
    pub fn lane(&self, index: usize) -> Option<Lane> {
        let settings = self.each[index].settings();
        settings.per_second.map(|per_second| Lane {
            name: format!("relay:{}", settings.name),
            per_second,
        })
    }

    /// Notes how a send through relay `index` ended. A relay fault (or a
    /// silence after the message) puts it down; an accepted message
    /// brings it back up. Returns the name of another relay that is up,
    /// for a send that failed on this one before anything was handed
    /// over; `None` when the send stays with the usual retries.
    pub fn settle(&self, index: usize, result: &Result<(), SendError>) -> Option<&str> {
        let relay = &self.each[index].settings().name;
        metrics::counter!("comms_relay_emails_total", "relay" => relay.clone(), "outcome" => outcome_label(result))
            .increment(1);
        let counts = &self.counts[index];
        let error = match result {
            Ok(()) => {
                counts.sent.fetch_add(1, Ordering::Relaxed);
                self.up(index);
                return None;
            }
            Err(error) => error,
        };
        counts.failed.fetch_add(1, Ordering::Relaxed);
        if !(error.is_relay_fault() || matches!(error, SendError::Uncertain(_))) {
            return None;
        }
        self.down(index, error);
        if !error.is_relay_fault() {
            return None;
        }
        let now = Instant::now();
        let other =
            (0..self.each.len()).find(|other| *other != index && lock(&self.health[*other]).is_up(now))?;
        counts.failovers.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("comms_relay_failovers_total", "relay" => relay.clone()).increment(1);
        Some(&self.each[other].settings().name)
    }

    /// Relay `index` failed with `error`: down for its next spell, unless
    /// it is down already (the sends that were in flight on it fail
    /// together; one spell counts them all).
    fn down(&self, index: usize, error: &SendError) {
        let now = Instant::now();
        let mut health = lock(&self.health[index]);
        if !health.is_up(now) {
            return;
        }
        let spell = health.next_down.max(FIRST_DOWN);
        health.down_until = Some(now + spell);
        health.next_down = (spell * 2).min(LONGEST_DOWN);
        health.error = Some(error.to_string());
        let relay = &self.each[index].settings().name;
        tracing::warn!(%relay, %error, down_for = ?spell, "a relay is down; the others take its mail");
        metrics::gauge!("comms_relay_up", "relay" => relay.clone()).set(0.0);
    }

    /// Relay `index` accepted a message: up, its next spell short again.
    fn up(&self, index: usize) {
        let mut health = lock(&self.health[index]);
        if health.error.is_none() {
            return;
        }
        *health = Health::default();
        let relay = &self.each[index].settings().name;
        tracing::info!(%relay, "a relay takes mail again");
        metrics::gauge!("comms_relay_up", "relay" => relay.clone()).set(1.0);
    }

    /// Each relay's figures, as this instance sees them.
    pub fn figures(&self) -> Vec<RelayFigures> {
        self.each
            .iter()
            .zip(&self.health)
            .zip(&self.counts)
            .map(|((relay, health), counts)| {
                let settings = relay.settings();
                let health = lock(health);
                RelayFigures {
                    name: settings.name.clone(),
                    address: settings.address(),
                    weight: settings.weight,
                    pool: settings.pool,
                    per_second: settings.per_second.unwrap_or(0.0),
                    // Down from its failure until it accepts a message
                    // again, its spells of rest and its tries included.
                    up: health.error.is_none(),
                    error: health.error.clone(),
                    sent: counts.sent.load(Ordering::Relaxed),
                    failed: counts.failed.load(Ordering::Relaxed),
                    failovers: counts.failovers.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Reports this instance's figures on `board` as `instance` every
    /// [`REPORT_EVERY`] until `shutdown` (after removing the reports of
    /// instances long gone); a report that cannot be written is tried
    /// again at the next tick.
    pub async fn report_until(
        self: std::sync::Arc<Self>,
        board: RelayBoard,
        instance: String,
        shutdown: CancellationToken,
    ) {
        if let Err(error) = board.forget_gone(servicekit::now_ms()).await {
            tracing::debug!(%error, "cannot tidy the relays' board");
        }
        let mut tick = tokio::time::interval(REPORT_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let report = RelayReport {
                at_ms: servicekit::now_ms(),
                relays: self.figures(),
            };
            if let Err(error) = board.report(&instance, &report).await {
                tracing::debug!(%error, "cannot report the relays' figures");
            }
        }
    }
}

impl Health {
    /// Whether the relay is up at `now` (or its spell down is over).
    fn is_up(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|until| now >= until)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsMode;

    fn relay(name: &str, weight: u32) -> RelaySettings {
        RelaySettings {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: 1,
            tls: TlsMode::None,
            credentials: None,
            pool: 1,
            reserved: 0,
            per_second: None,
            weight,
        }
    }

    fn refused() -> Result<(), SendError> {
        Err(SendError::Relay("cannot connect".into()))
    }

    #[test]
    fn weights_share_the_mail_and_a_down_relay_fails_over_until_it_accepts_again() {
        let relays = Relays::new(
            vec![relay("a", 3), relay("b", 1), relay("standby", 0)],
            Duration::from_secs(1),
        );
        let mut picked = [0; 3];
        for _ in 0..400 {
            picked[relays.pick()] += 1;
        }
        assert_eq!(picked, [300, 100, 0]);

        assert_eq!(relays.settle(0, &refused()), Some("b"));
        assert!((0..50).all(|_| relays.pick() == 1), "a is skipped while down");
        // The sends in flight on `a` fail together: one spell.
        assert_eq!(relays.settle(0, &refused()), Some("b"));
        assert_eq!(lock(&relays.health[0]).next_down, FIRST_DOWN * 2);

        assert_eq!(relays.settle(1, &refused()), Some("standby"));
        assert!((0..10).all(|_| relays.pick() == 2), "only the standby is up");
        assert_eq!(relays.settle(2, &refused()), None, "no other relay is up");
        assert_eq!(relays.pick(), 0, "none up: the one down longest is tried");

        // A 4xx or a recipient's refusal says nothing about the relay.
        relays.up(0);
        assert_eq!(relays.settle(0, &Err(SendError::Transient("451".into()))), None);
        assert_eq!(
            relays.settle(0, &Err(SendError::RecipientRefused("550".into()))),
            None
        );
        assert!(lock(&relays.health[0]).is_up(Instant::now()));
        // A silence after the message: down, but the send does not move.
        assert_eq!(
            relays.settle(0, &Err(SendError::Uncertain("no reply".into()))),
            None
        );
        assert!(!lock(&relays.health[0]).is_up(Instant::now()));
        assert_eq!(relays.settle(0, &Ok(())), None);
        assert!(lock(&relays.health[0]).is_up(Instant::now()));

        let figures = relays.figures();
        assert_eq!(
            (figures[0].sent, figures[0].failed, figures[0].failovers),
            (1, 5, 2)
        );
        assert_eq!((figures[1].up, figures[1].failovers), (false, 1));
        assert!(figures[1].error.as_deref().unwrap().contains("cannot connect"));
    }
}
