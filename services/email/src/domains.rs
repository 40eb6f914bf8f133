//! Rates per receiving domain (`EMAIL_DOMAIN_RATE` for every domain,
//! `EMAIL_DOMAIN_LIMITS` for some: `gmail.com=20/s,outlook.com=300/m`):
//! gmail.com and outlook.com throttle a sender that goes too fast for
//! them, whatever the relay takes. Each domain is a lane of its own under
//! the shared rate ([`eventstore::rate`]), kept across instances, so a
//! slow domain waits alone and mail to the others goes on.

use std::collections::HashMap;

/// The rate of each receiving domain, emails a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainRates {
    /// Every domain's, unless overridden.
    default: Option<f64>,
    /// By lowercase domain.
    overrides: HashMap<String, f64>,
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
            overrides: HashMap::new(),
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
    /// if it has one.
    pub fn of_address(&self, address: &str) -> Option<(String, f64)> {
        let domain = address.rsplit_once('@')?.1.to_ascii_lowercase();
        let rate = self.overrides.get(&domain).copied().or(self.default)?;
        Some((domain, rate))
    }
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
        assert_eq!(DomainRates::parse(0.0, "").unwrap(), DomainRates::default());
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
