//! Limits per receiving domain: gmail.com and outlook.com throttle a
//! sender that goes too fast or opens too many connections for them,
//! whatever the relay takes.
//!
//! **Rates** (`EMAIL_DOMAIN_RATE` for every domain, `EMAIL_DOMAIN_LIMITS`
//! for some: `gmail.com=20/s,outlook.com=300/m`): each domain is a lane of
//! its own under the shared rate ([`eventstore::rate`]), kept across
//! instances, so a slow domain waits alone and mail to the others goes on.
//!
//! **Connections** (`EMAIL_DOMAIN_CONNECTIONS` for every domain,
//! `gmail.com=2 connections` among `EMAIL_DOMAIN_LIMITS` for some): the
//! most sends to one domain in flight at once, each instance on its own
//! (each send holds one SMTP connection while it runs). A send waits for
//! its place at most [`crate::limits::HORIZON`]; past it, it gives its
//! lease back and comes again later, so that the sends held for a busy
//! domain never fill the worker and hold the other domains back.
//!
//! A domain that asks to slow down (a throttling reply:
//! [`crate::mailer::SendError::Throttled`]) gets a slower rate at once:
//! half its rate (or half of [`START`] for a domain without one), down to
//! [`FLOOR`], at most once per [`CUT_EVERY`] (the replies to the sends
//! already in flight say the same thing once); each email it accepts then
//! raises it by [`RAISE`], until it
//! is back at its set rate (or [`RECOVERED`]) and forgotten. Each instance
//! adapts from the replies it gets; the domain's lane is shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The rate a domain without one slows down from, emails a second.
pub const START: f64 = 10.0;
/// The slowest a throttling domain is sent to, emails a second.
pub const FLOOR: f64 = 0.2;
/// A domain without a set rate is forgotten once back at this rate.
pub const RECOVERED: f64 = 100.0;
/// The factor each accepted email raises a slowed domain's rate by.
pub const RAISE: f64 = 1.05;
/// The shortest time between two cuts of a domain's rate.
pub const CUT_EVERY: Duration = Duration::from_secs(1);

/// The limits of each receiving domain: its rate, emails a second (set,
/// and as its replies have made it), and its connections. Clones share
/// the slowed rates and the connections in use.
#[derive(Debug, Clone, Default)]
pub struct DomainLimits {
    /// Every domain's rate, unless overridden.
    default: Option<f64>,
    /// Rates by lowercase domain.
    overrides: HashMap<String, f64>,
    /// Every domain's most connections at once, unless overridden.
    default_connections: Option<u32>,
    /// Most connections at once by lowercase domain.
    connection_overrides: HashMap<String, u32>,
    /// The places of the domains with a connection limit.
    connections: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// The domains slowed down by their replies: their rate now, and
    /// when it was last cut.
    slowed: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl DomainLimits {
    /// The limits of `default` (emails a second; 0: none),
    /// `default_connections` (0: none) and `overrides` (`domain=<n>/s`,
    /// `/m` or `/h`, or `domain=<n> connections`, comma-separated); an
    /// error names the setting and the item that is not one.
    pub fn parse(default: f64, default_connections: u32, overrides: &str) -> anyhow::Result<Self> {
        if !default.is_finite() || default < 0.0 {
            anyhow::bail!("EMAIL_DOMAIN_RATE must be a number of emails a second (0: none), not {default}");
        }
        let mut limits = Self {
            default: (default > 0.0).then_some(default),
            default_connections: (default_connections > 0).then_some(default_connections),
            ..Self::default()
        };
        for item in overrides
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (domain, limit) = parse_override(item)
                .map_err(|why| anyhow::anyhow!("EMAIL_DOMAIN_LIMITS: `{}` {why}", item.escape_default()))?;
            match limit {
                Limit::Rate(rate) => {
                    limits.overrides.insert(domain, rate);
                }
                Limit::Connections(most) => {
                    limits.connection_overrides.insert(domain, most);
                }
            }
        }
        Ok(limits)
    }

    /// A place among the sends in flight to the domain of `address`, when
    /// it has a connection limit (`Ok(None)` when it has none), waited for
    /// at most `wait`; `Err` when none came free in that time.
    pub async fn connection(
        &self,
        address: &str,
        wait: Duration,
    ) -> Result<Option<OwnedSemaphorePermit>, String> {
        if self.default_connections.is_none() && self.connection_overrides.is_empty() {
            return Ok(None);
        }
        let Some(domain) = domain_of(address) else {
            return Ok(None);
        };
        let Some(most) = self
            .connection_overrides
            .get(&domain)
            .copied()
            .or(self.default_connections)
        else {
            return Ok(None);
        };
        let places = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(domain.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(most as usize)))
            .clone();
        if let Ok(place) = tokio::time::timeout(wait, places.acquire_owned()).await {
            return Ok(Some(place.expect("a domain's places are never closed")));
        }
        metrics::counter!("comms_send_domain_busy_total").increment(1);
        Err(format!("{domain} has its {most} connections in use"))
    }

    /// The rate of the domain of `address` (what follows its last `@`),
    /// if it has one: its set rate, or slower if its replies asked.
    pub fn of_address(&self, address: &str) -> Option<(String, f64)> {
        if self.default.is_none() && self.overrides.is_empty() && self.slowed().is_empty() {
            return None;
        }
        let domain = domain_of(address)?;
        let set = self.set_rate(&domain);
        let slowed = self.slowed().get(&domain).map(|(rate, _)| *rate);
        let rate = match (set, slowed) {
            (Some(set), Some(slowed)) => set.min(slowed),
            (set, slowed) => set.or(slowed)?,
        };
        Some((domain, rate))
    }

    /// The domain of `address` asked to slow down: halve its rate, unless
    /// it was cut within [`CUT_EVERY`].
    pub fn throttled(&self, address: &str) {
        self.throttled_at(address, Instant::now());
    }

    fn throttled_at(&self, address: &str, at: Instant) {
        metrics::counter!("comms_send_throttled_total").increment(1);
        let Some(domain) = domain_of(address) else { return };
        let set = self.set_rate(&domain);
        let mut slowed = self.slowed();
        let rate = match slowed.get(&domain) {
            Some((_, cut)) if at.saturating_duration_since(*cut) < CUT_EVERY => return,
            Some((rate, _)) => *rate,
            None => set.unwrap_or(START),
        };
        let rate = (rate / 2.0).max(FLOOR);
        tracing::info!(%domain, rate, "the domain asked to slow down");
        slowed.insert(domain, (rate, at));
    }

    /// The domain of `address` accepted an email: a slowed domain's rate
    /// rises, and is forgotten once back where it was.
    pub fn accepted(&self, address: &str) {
        let mut slowed = self.slowed();
        if slowed.is_empty() {
            return;
        }
        let Some(domain) = domain_of(address) else { return };
        let recovered = self.set_rate(&domain).unwrap_or(RECOVERED);
        if let Some((rate, _)) = slowed.get_mut(&domain) {
            *rate *= RAISE;
            if *rate >= recovered {
                slowed.remove(&domain);
                tracing::info!(%domain, "the domain is back at its rate");
            }
        }
    }

    fn set_rate(&self, domain: &str) -> Option<f64> {
        self.overrides.get(domain).copied().or(self.default)
    }

    fn slowed(&self) -> std::sync::MutexGuard<'_, HashMap<String, (f64, Instant)>> {
        self.slowed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lowercase domain of `address`: what follows its last `@`.
fn domain_of(address: &str) -> Option<String> {
    Some(address.rsplit_once('@')?.1.to_ascii_lowercase())
}

/// One limit of a domain.
enum Limit {
    /// Emails a second.
    Rate(f64),
    /// Most connections at once.
    Connections(u32),
}

/// `domain=<n>/<unit>` or `domain=<n> connections` as the lowercase
/// domain and its limit.
fn parse_override(item: &str) -> Result<(String, Limit), String> {
    let (domain, limit) = item
        .split_once('=')
        .ok_or("is not `domain=rate` or `domain=<n> connections`, as `gmail.com=20/s`")?;
    let domain = domain.trim().to_ascii_lowercase();
    if !is_domain(&domain) {
        return Err(format!("names no domain (`{}`)", domain.escape_default()));
    }
    let limit = limit.trim();
    if let Some(count) = limit
        .strip_suffix("connections")
        .or_else(|| limit.strip_suffix("connection"))
    {
        return match count.trim().parse::<u32>() {
            Ok(most) if most > 0 => Ok((domain, Limit::Connections(most))),
            _ => Err("has no whole number above 0 before `connections`".into()),
        };
    }
    let (count, unit) = limit
        .split_once('/')
        .ok_or("has no unit: `/s`, `/m` or `/h` (or ` connections`)")?;
    let seconds = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        _ => return Err("has a unit other than `/s`, `/m` or `/h`".into()),
    };
    let count: f64 = count
        .trim()
        .parse()
        .map_err(|_| "has no number before its unit".to_string())?;
    if !count.is_finite() || count <= 0.0 {
        return Err("has a rate that is not more than 0".into());
    }
    Ok((domain, Limit::Rate(count / seconds)))
}

/// Whether `name` is a domain name: dot-separated labels of letters,
/// digits and inner hyphens, at least two, at most 253 characters.
fn is_domain(name: &str) -> bool {
    let label = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253 && name.contains('.') && name.split('.').all(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_take_their_domain_and_the_default_the_others() {
        let rates =
            DomainLimits::parse(5.0, 0, " Gmail.com=20/s, outlook.com=300/m,example.org=36/h ").unwrap();
        assert_eq!(
            rates.of_address("Ada@GMAIL.com"),
            Some(("gmail.com".into(), 20.0))
        );
        assert_eq!(
            rates.of_address("bob@outlook.com"),
            Some(("outlook.com".into(), 5.0))
        );
        assert_eq!(
            rates.of_address("eve@example.org"),
            Some(("example.org".into(), 0.01))
        );
        assert_eq!(
            rates.of_address("carol@example.com"),
            Some(("example.com".into(), 5.0))
        );
        let only_overrides = DomainLimits::parse(0.0, 0, "gmail.com=1/s").unwrap();
        assert_eq!(only_overrides.of_address("dan@example.com"), None);
        assert_eq!(
            DomainLimits::parse(0.0, 0, "")
                .unwrap()
                .of_address("ada@gmail.com"),
            None
        );
    }

    #[test]
    fn a_throttling_domain_is_halved_then_recovers_as_it_accepts() {
        let rates = DomainLimits::parse(0.0, 0, "gmail.com=20/s").unwrap();
        let start = Instant::now();
        let later = |cuts: u32| start + CUT_EVERY * cuts;
        rates.throttled_at("ada@gmail.com", start);
        assert_eq!(
            rates.of_address("bob@gmail.com"),
            Some(("gmail.com".into(), 10.0))
        );
        // The replies of the sends in flight: one cut a second.
        rates.throttled_at("ada@example.com", start);
        rates.throttled_at("bob@example.com", start);
        rates.throttled_at("carol@example.com", later(1));
        assert_eq!(
            rates.of_address("bob@example.com"),
            Some(("example.com".into(), START / 4.0))
        );
        for cut in 0..100 {
            rates.throttled_at("eve@slow.example", later(cut));
        }
        assert_eq!(
            rates.of_address("x@slow.example"),
            Some(("slow.example".into(), FLOOR))
        );
        // Accepted mail raises gmail.com back to its set 20/s, then it
        // is forgotten; other domains are untouched by it.
        for _ in 0..15 {
            rates.accepted("ada@gmail.com");
        }
        assert_eq!(
            rates.of_address("bob@gmail.com"),
            Some(("gmail.com".into(), 20.0))
        );
        assert!(!rates.slowed().contains_key("gmail.com"));
        assert_eq!(
            rates.of_address("bob@example.com"),
            Some(("example.com".into(), START / 4.0))
        );
        rates.accepted("nobody");
    }

    #[tokio::test]
    async fn a_domain_s_connections_are_held_by_its_sends_and_the_others_are_free() {
        let limits = DomainLimits::parse(0.0, 3, "gmail.com=1 connection, gmail.com=20/s").unwrap();
        assert_eq!(
            limits.of_address("ada@gmail.com"),
            Some(("gmail.com".into(), 20.0))
        );
        let wait = Duration::from_millis(50);
        let first = limits.connection("ada@gmail.com", wait).await.unwrap();
        assert!(first.is_some());
        let busy = limits.connection("bob@GMAIL.com", wait).await.unwrap_err();
        assert_eq!(busy, "gmail.com has its 1 connections in use");
        let others: Vec<_> =
            futures::future::join_all((0..3).map(|_| limits.connection("eve@example.com", wait))).await;
        assert!(
            others.iter().all(|place| matches!(place, Ok(Some(_)))),
            "the default: 3"
        );
        drop(first);
        assert!(limits
            .clone()
            .connection("bob@gmail.com", wait)
            .await
            .unwrap()
            .is_some());
        let unlimited = DomainLimits::parse(0.0, 0, "gmail.com=20/s").unwrap();
        assert!(unlimited
            .connection("ada@gmail.com", wait)
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_bad_item_is_named_with_its_setting() {
        for (overrides, why) in [
            ("gmail.com", "is not `domain=rate`"),
            ("gmail..com=1/s", "names no domain"),
            ("-gmail.com=1/s", "names no domain"),
            ("localhost=1/s", "names no domain"),
            ("gmail.com=20", "has no unit"),
            ("gmail.com=20/d", "a unit other than"),
            ("gmail.com=fast/s", "no number"),
            ("gmail.com=0/s", "not more than 0"),
            ("gmail.com=0 connections", "no whole number above 0"),
            ("gmail.com=many connections", "no whole number above 0"),
        ] {
            let error = DomainLimits::parse(0.0, 0, overrides).unwrap_err().to_string();
            assert!(error.starts_with("EMAIL_DOMAIN_LIMITS: `"), "{error}");
            assert!(error.contains(why), "{overrides}: {error}");
        }
        let error = DomainLimits::parse(-1.0, 0, "").unwrap_err().to_string();
        assert!(error.starts_with("EMAIL_DOMAIN_RATE must be"), "{error}");
    }
}
