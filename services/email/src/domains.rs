//! Rates per receiving domain (`EMAIL_DOMAIN_RATE` for every domain,
//! `EMAIL_DOMAIN_LIMITS` for some: `gmail.com=20/s,outlook.com=300/m`):
//! gmail.com and outlook.com throttle a sender that goes too fast for
//! them, whatever the relay takes. Each domain is a lane of its own under
//! the shared rate ([`eventstore::rate`]), kept across instances, so a
//! slow domain waits alone and mail to the others goes on.
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

/// The rate of each receiving domain, emails a second: set, and as its
/// replies have made it. Clones share the latter.
#[derive(Debug, Clone, Default)]
pub struct DomainRates {
    /// Every domain's, unless overridden.
    default: Option<f64>,
    /// By lowercase domain.
    overrides: HashMap<String, f64>,
    /// The domains slowed down by their replies: their rate now, and
    /// when it was last cut.
    slowed: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl DomainRates {
    /// The rates of `default` (emails a second; 0: none) and `overrides`
    /// (`domain=<n>/s`, `/m` or `/h`, comma-separated); an error names the
    /// setting and the item that is not one.
    pub fn parse(default: f64, overrides: &str) -> anyhow::Result<Self> {
        if !default.is_finite() || default < 0.0 {
            anyhow::bail!("EMAIL_DOMAIN_RATE must be a number of emails a second (0: none), not {default}");
        }
        let mut rates = Self {
            default: (default > 0.0).then_some(default),
            ..Self::default()
        };
        for item in overrides
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (domain, rate) = parse_override(item)
                .map_err(|why| anyhow::anyhow!("EMAIL_DOMAIN_LIMITS: `{}` {why}", item.escape_default()))?;
            rates.overrides.insert(domain, rate);
        }
        Ok(rates)
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

/// `domain=<n>/<unit>` as the lowercase domain and its rate a second.
fn parse_override(item: &str) -> Result<(String, f64), String> {
    let (domain, rate) = item
        .split_once('=')
        .ok_or("is not `domain=rate`, as `gmail.com=20/s`")?;
    let domain = domain.trim().to_ascii_lowercase();
    if !is_domain(&domain) {
        return Err(format!("names no domain (`{}`)", domain.escape_default()));
    }
    let (count, unit) = rate
        .trim()
        .split_once('/')
        .ok_or("has no unit: `/s`, `/m` or `/h`")?;
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
    Ok((domain, count / seconds))
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
        let rates = DomainRates::parse(5.0, " Gmail.com=20/s, outlook.com=300/m,example.org=36/h ").unwrap();
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
        let only_overrides = DomainRates::parse(0.0, "gmail.com=1/s").unwrap();
        assert_eq!(only_overrides.of_address("dan@example.com"), None);
        assert_eq!(
            DomainRates::parse(0.0, "").unwrap().of_address("ada@gmail.com"),
            None
        );
    }

    #[test]
    fn a_throttling_domain_is_halved_then_recovers_as_it_accepts() {
        let rates = DomainRates::parse(0.0, "gmail.com=20/s").unwrap();
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
        ] {
            let error = DomainRates::parse(0.0, overrides).unwrap_err().to_string();
            assert!(error.starts_with("EMAIL_DOMAIN_LIMITS: `"), "{error}");
            assert!(error.contains(why), "{overrides}: {error}");
        }
        let error = DomainRates::parse(-1.0, "").unwrap_err().to_string();
        assert!(error.starts_with("EMAIL_DOMAIN_RATE must be"), "{error}");
    }
}
