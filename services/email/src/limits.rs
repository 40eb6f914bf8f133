//! How fast email-service may send: the shared rate and quotas of every
//! instance together (`EMAIL_SEND_RATE`, `EMAIL_SEND_BURST`,
//! `EMAIL_SEND_PER_HOUR`, `EMAIL_SEND_PER_DAY`), each campaign's own rate
//! (`rate_per_s`, carried on its email requests) and each receiving
//! domain's ([`crate::domains`]) and each relay's ([`crate::relays`]), as
//! slots reserved in Redis ([`eventstore::rate`]) before each batch's
//! sends, each send given its relay then.
//!
//! A send with a slot waits for it (at most [`HORIZON`]) holding its
//! lease, which is renewed meanwhile; one without a slot gives its lease
//! back and its entry is delivered again when a slot may be free
//! ([`eventstore::HandleError::Later`]): a wait, not a failure, so a used-up
//! quota delays sends without spending their retry budget or counting a
//! failure.

use std::sync::Arc;
use std::time::Duration;

use contracts::EmailRequested;
use eventstore::rate::{Lane, RateLimiter, SharedLimits, Slot};
use eventstore::{HandleError, Redis};
use tokio::sync::OwnedSemaphorePermit;

use crate::config::Config;
use crate::domains::DomainLimits;
use crate::relays::Relays;

/// How far ahead a slot is reserved: the longest a send waits for its
/// slot holding its lease and its handler's run.
pub const HORIZON: Duration = Duration::from_secs(2);

/// How soon a send whose domain had no connection free comes again.
pub const DOMAIN_BUSY_AGAIN: Duration = Duration::from_millis(500);

/// The shared limits `config` sets, or the setting that is not one.
pub fn from_config(config: &Config) -> anyhow::Result<SharedLimits> {
    let rate = config.send_rate;
    if !rate.is_finite() || rate < 0.0 {
        anyhow::bail!("EMAIL_SEND_RATE must be a number of emails a second (0: no limit), not {rate}");
    }
    let per_second = (rate > 0.0).then_some(rate);
    let burst = match (per_second, config.send_burst) {
        (Some(rate), 0) => (rate.ceil() as u32).max(1),
        (_, burst) => burst.max(1),
    };
    Ok(SharedLimits {
        per_second,
        burst,
        per_hour: (config.send_per_hour > 0).then_some(config.send_per_hour),
        per_day: (config.send_per_day > 0).then_some(config.send_per_day),
    })
}

/// Reserves the slots of each batch's sends, and says so in `/metrics`.
#[derive(Clone)]
pub struct SendSlots {
    limiter: RateLimiter,
    domains: DomainLimits,
    relays: Arc<Relays>,
}

impl SendSlots {
    /// Slots under `limits` and the rates of `domains` and of `relays`
    /// (which also give each send its relay), shared through `redis`; the
    /// limits are shown as gauges (`comms_send_rate_limit`,
    /// `comms_send_quota`; 0: none).
    pub fn new(redis: Redis, limits: SharedLimits, domains: DomainLimits, relays: Arc<Relays>) -> Self {
        metrics::gauge!("comms_send_rate_limit").set(limits.per_second.unwrap_or(0.0));
        metrics::gauge!("comms_send_burst").set(f64::from(limits.burst));
        for (window, quota) in [("hour", limits.per_hour), ("day", limits.per_day)] {
            metrics::gauge!("comms_send_quota", "window" => window).set(quota.unwrap_or(0) as f64);
        }
        Self {
            limiter: RateLimiter::new(redis, limits, HORIZON),
            domains,
            relays,
        }
    }

    /// The relay and slot of each email of a batch that is to be sent
    /// (`to_send`), in one round trip; `None` for the others.
    pub async fn for_batch(
        &self,
        emails: &[EmailRequested],
        to_send: &[bool],
    ) -> eventstore::Result<Vec<Option<(Slot, usize)>>> {
        let asked: Vec<&EmailRequested> = emails
            .iter()
            .zip(to_send)
            .filter(|(_, send)| **send)
            .map(|(email, _)| email)
            .collect();
        let mut slots = self.reserve(&asked).await?.into_iter();
        Ok(to_send
            .iter()
            .map(|send| if *send { slots.next() } else { None })
            .collect())
    }

    /// A relay and a slot for each of `emails`, in one round trip: each
    /// goes through the shared limits, its campaign's lane (with a
    /// `rate_per_s`), its domain's (with a rate) and its relay's (with a
    /// rate).
    async fn reserve(&self, emails: &[&EmailRequested]) -> eventstore::Result<Vec<(Slot, usize)>> {
        let relays: Vec<usize> = emails.iter().map(|_| self.relays.pick()).collect();
        let sends: Vec<Vec<Lane>> = emails
            .iter()
            .zip(&relays)
            .map(|(email, relay)| self.lanes(email, *relay))
            .collect();
        let slots = self.limiter.reserve(&sends).await?;
        for slot in &slots {
            match slot {
                Slot::In(wait) => {
                    metrics::histogram!("comms_send_rate_wait_seconds").record(wait.as_secs_f64());
                }
                Slot::Later(_) => metrics::counter!("comms_send_deferred_total").increment(1),
            }
        }
        Ok(slots.into_iter().zip(relays).collect())
    }

    /// A place among the sends in flight to the domain of `address`, when
    /// it has a connection limit, waited for at most [`HORIZON`]; else the
    /// answer that brings the send back after [`DOMAIN_BUSY_AGAIN`].
    pub async fn domain_connection(
        &self,
        address: &str,
    ) -> Result<Option<OwnedSemaphorePermit>, HandleError> {
        self.domains
            .connection(address, HORIZON)
            .await
            .map_err(|busy| HandleError::Later(DOMAIN_BUSY_AGAIN, busy))
    }

    /// The domain of `address` asked to slow down: it is slowed, alone.
    pub fn throttled(&self, address: &str) {
        self.domains.throttled(address);
    }

    /// The domain of `address` accepted an email: a slowed domain speeds
    /// up again.
    pub fn accepted(&self, address: &str) {
        self.domains.accepted(address);
    }

    /// The lanes `email` goes through besides the shared limits, sent
    /// through relay `relay`.
    fn lanes(&self, email: &EmailRequested, relay: usize) -> Vec<Lane> {
        let campaign = email
            .rate_per_s
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map(|per_second| Lane {
                name: format!("campaign:{}", email.campaign_id),
                per_second,
            });
        let domain = self
            .domains
            .of_address(&email.to_email)
            .map(|(domain, per_second)| Lane {
                name: format!("domain:{domain}"),
                per_second,
            });
        campaign
            .into_iter()
            .chain(domain)
            .chain(self.relays.lane(relay))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_become_limits_and_a_bad_rate_is_named() {
        let mut config = Config::default();
        assert!(!from_config(&config).unwrap().any(), "no limit by default");
        config.send_rate = 14.0;
        config.send_per_day = 50_000;
        let limits = from_config(&config).unwrap();
        assert_eq!(
            limits,
            SharedLimits {
                per_second: Some(14.0),
                burst: 14,
                per_hour: None,
                per_day: Some(50_000),
            }
        );
        config.send_rate = 0.5;
        assert_eq!(from_config(&config).unwrap().burst, 1);
        config.send_burst = 3;
        assert_eq!(from_config(&config).unwrap().burst, 3);
        config.send_rate = -1.0;
        let error = from_config(&config).unwrap_err().to_string();
        assert!(error.starts_with("EMAIL_SEND_RATE must be"), "{error}");
    }
}
