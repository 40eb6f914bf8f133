//! What a user is besides a name and an address: country, locale, plan,
//! sign-up time, tags and free-form attributes, the things a campaign's
//! audience filter ([`contracts::audience`]) selects on. All optional.
//!
//! Each is checked at the door (the API and the import share
//! [`ProfileChange`]'s checks), so the table only ever holds values a
//! filter can compare: a country is two uppercase letters, a sign-up time
//! is milliseconds since the epoch (it orders the same on SQLite and
//! PostgreSQL), tags are plain words. Tags live in `user_tags`, a row per
//! tag, so that "`'beta' in tags`" is an indexed `EXISTS` on both
//! databases rather than a JSON function each spells its own way.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

/// Most tags a user may have.
pub const MAX_TAGS: usize = 50;
/// The longest tag, plan, in characters.
pub const MAX_WORD: usize = 64;
/// The largest `attributes` object, in bytes of compact JSON.
pub const MAX_ATTRIBUTES: usize = 4 * 1024;
/// The longest locale, in characters (BCP 47 allows long ones; 35 holds
/// any language, script, region and variant in use).
pub const MAX_LOCALE: usize = 35;

/// The optional attributes of a user, as stored and served (a field that
/// is not set is left out of the JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Profile {
    /// ISO 3166 alpha-2 country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "DE", pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    /// Locale (BCP 47).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "de-DE", max_length = 35)]
    pub locale: Option<String>,
    /// Plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "pro", min_length = 1, max_length = 64)]
    pub plan: Option<String>,
    /// When the user signed up, RFC 3339 in UTC (stored as milliseconds
    /// since the epoch).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2025-01-31T09:30:00Z")]
    pub signed_up_at: Option<i64>,
    /// Tags, a set, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["beta", "newsletter"]), max_items = 50)]
    pub tags: Vec<String>,
    /// Free-form attributes: a JSON object under 4 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"team": "ops"}))]
    pub attributes: Option<Value>,
}

/// Milliseconds since the epoch as RFC 3339.
#[allow(clippy::ref_option)] // serde's `serialize_with` hands a reference
fn rfc3339<S: Serializer>(ms: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms.and_then(contracts::audience::format_time_ms) {
        Some(text) => serializer.serialize_some(&text),
        None => serializer.serialize_none(),
    }
}

impl Profile {
    /// The stored text of [`Profile::attributes`]: compact JSON with its
    /// keys in order, so that the same object is the same text.
    pub fn attributes_text(&self) -> Option<String> {
        self.attributes.as_ref().map(Value::to_string)
    }
}

/// What a request or a row says of one attribute: nothing (leave it as
/// it is), `null` (clear it), or a value (set it). With
/// `#[serde(default)]`, a missing key is [`Given::Absent`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Given<T> {
    /// Not given: left as it is.
    #[default]
    Absent,
    /// Given as `null` (or an empty CSV cell): cleared.
    Cleared,
    /// Given a value: set.
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Given<T> {
    fn deserialize<D: serde::Deserializer<'de>>(field: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(field)?.map_or(Given::Cleared, Given::Set))
    }
}

impl<T> Given<T> {
    /// A value if there is one, else absent: what a creation is given.
    pub fn from_option(value: Option<T>) -> Self {
        value.map_or(Given::Absent, Given::Set)
    }

    /// The value checked by `check`.
    fn check<U>(self, check: impl FnOnce(T) -> Result<U, String>) -> Result<Given<U>, String> {
        Ok(match self {
            Given::Absent => Given::Absent,
            Given::Cleared => Given::Cleared,
            Given::Set(value) => Given::Set(check(value)?),
        })
    }
}

impl<T: Clone> Given<T> {
    /// What the attribute is after this, if it was `before`.
    fn apply(&self, before: Option<&T>) -> Option<T> {
        match self {
            Given::Absent => before.cloned(),
            Given::Cleared => None,
            Given::Set(value) => Some(value.clone()),
        }
    }
}

/// A change to a profile, checked: what `POST`, `PATCH` and the import
/// all apply. Tags, when given, replace the set (cleared: no tags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileChange {
    /// Country.
    pub country: Given<String>,
    /// Locale.
    pub locale: Given<String>,
    /// Plan.
    pub plan: Given<String>,
    /// Sign-up time, ms since the epoch.
    pub signed_up_at: Given<i64>,
    /// The new tag set.
    pub tags: Given<Vec<String>>,
    /// Attributes (an object).
    pub attributes: Given<Value>,
}

/// The unchecked attributes of a request or a row, as given.
#[derive(Debug, Default)]
pub struct RawProfile {
    /// Country.
    pub country: Given<String>,
    /// Locale.
    pub locale: Given<String>,
    /// Plan.
    pub plan: Given<String>,
    /// Sign-up time, RFC 3339.
    pub signed_up_at: Given<String>,
    /// Tags.
    pub tags: Given<Vec<String>>,
    /// Attributes.
    pub attributes: Given<Value>,
}

impl RawProfile {
    /// Checks every attribute given; an error names the first bad one.
    pub fn check(self) -> Result<ProfileChange, String> {
        Ok(ProfileChange {
            country: self.country.check(|c| checked_country(&c))?,
            locale: self.locale.check(|l| checked_locale(&l))?,
            plan: self.plan.check(|p| checked_plan(&p))?,
            signed_up_at: self.signed_up_at.check(|s| checked_signed_up_at(&s))?,
            tags: self.tags.check(checked_tags)?,
            attributes: self.attributes.check(checked_attributes)?,
        })
    }
}

impl ProfileChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `profile` with this change applied.
    pub fn apply(&self, profile: &Profile) -> Profile {
        Profile {
            country: self.country.apply(profile.country.as_ref()),
            locale: self.locale.apply(profile.locale.as_ref()),
            plan: self.plan.apply(profile.plan.as_ref()),
            signed_up_at: self.signed_up_at.apply(profile.signed_up_at.as_ref()),
            tags: self.tags.apply(Some(&profile.tags)).unwrap_or_default(),
            attributes: self.attributes.apply(profile.attributes.as_ref()),
        }
    }
}

/// `country`, if it is an ISO 3166 alpha-2 code (two uppercase letters).
pub fn checked_country(country: &str) -> Result<String, String> {
    if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(country.to_string())
    } else {
        Err(format!(
            "country must be two uppercase letters (ISO 3166 alpha-2, e.g. DE), not `{}`",
            country.escape_default()
        ))
    }
}

/// `locale`, if it looks like a BCP 47 tag: a language of 2 or 3 letters,
/// then subtags of 1 to 8 letters or digits, joined by `-` (`de`,
/// `de-DE`, `zh-Hant-TW`).
pub fn checked_locale(locale: &str) -> Result<String, String> {
    let mut parts = locale.split('-');
    let language = parts.next().unwrap_or_default();
    let good = locale.len() <= MAX_LOCALE
        && (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|part| (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if good {
        Ok(locale.to_string())
    } else {
        Err(format!(
            "locale must be a BCP 47 language tag (e.g. de-DE), not `{}`",
            locale.escape_default()
        ))
    }
}

/// `plan`, if it is 1 to 64 characters, none a control character.
pub fn checked_plan(plan: &str) -> Result<String, String> {
    let length = plan.chars().count();
    if (1..=MAX_WORD).contains(&length) && !plan.chars().any(char::is_control) {
        Ok(plan.to_string())
    } else {
        Err(format!(
            "plan must be 1 to {MAX_WORD} characters without control characters"
        ))
    }
}

/// `signed_up_at` (an RFC 3339 date or date-time) in ms since the epoch.
pub fn checked_signed_up_at(signed_up_at: &str) -> Result<i64, String> {
    contracts::audience::parse_time_ms(signed_up_at).ok_or_else(|| {
        format!(
            "signed_up_at must be an RFC 3339 date or date-time (2025-01-31 or 2025-01-31T09:30:00Z), not `{}`",
            signed_up_at.escape_default()
        )
    })
}

/// `tags` as a set in order, if there are at most 50, each 1 to 64 of
/// `A-Z a-z 0-9 _ -`.
pub fn checked_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    if let Some(bad) = tags.iter().find(|tag| {
        !(1..=MAX_WORD).contains(&tag.len())
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) {
        return Err(format!(
            "tags: each is 1 to {MAX_WORD} of A-Z, a-z, 0-9, _ and -, not `{}`",
            bad.escape_default()
        ));
    }
    // Counted as given, repeats too: what the OpenAPI document's
    // `maxItems` says.
    if tags.len() > MAX_TAGS {
        return Err(format!("tags: at most {MAX_TAGS}, not {}", tags.len()));
    }
    let mut tags = tags;
    tags.sort_unstable();
    tags.dedup();
    Ok(tags)
}

/// `attributes`, if it is a JSON object under 4 KiB.
pub fn checked_attributes(attributes: Value) -> Result<Value, String> {
    if !attributes.is_object() {
        return Err("attributes must be a JSON object".into());
    }
    let size = attributes.to_string().len();
    if size >= MAX_ATTRIBUTES {
        return Err(format!(
            "attributes must be under {MAX_ATTRIBUTES} bytes of JSON, not {size}"
        ));
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_name_the_field() {
        assert!(checked_country("de").unwrap_err().starts_with("country"));
        assert!(checked_country("DEU").is_err());
        assert_eq!(checked_country("DE").unwrap(), "DE");
        for good in ["de", "de-DE", "zh-Hant-TW", "es-419"] {
            assert_eq!(checked_locale(good).unwrap(), good);
        }
        for bad in ["", "d", "de_DE", "de-", "german-DE", "de-DE-toolongtag"] {
            assert!(checked_locale(bad).unwrap_err().starts_with("locale"), "{bad}");
        }
        assert!(checked_plan("").unwrap_err().starts_with("plan"));
        assert!(checked_plan(&"p".repeat(65)).is_err());
        assert!(checked_signed_up_at("yesterday")
            .unwrap_err()
            .starts_with("signed_up_at"));
        assert_eq!(checked_signed_up_at("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(
            checked_tags(vec!["vip".into(), "beta".into(), "vip".into()]).unwrap(),
            ["beta", "vip"]
        );
        assert!(checked_tags(vec!["a b".into()]).unwrap_err().starts_with("tags"));
        assert!(checked_tags((0..51).map(|n| format!("t{n}")).collect()).is_err());
        assert!(checked_attributes(json!([1]))
            .unwrap_err()
            .starts_with("attributes"));
        assert!(checked_attributes(json!({"a": "x".repeat(4096)})).is_err());
    }

    #[test]
    fn a_change_sets_clears_or_leaves_each_attribute() {
        let before = Profile {
            country: Some("DE".into()),
            plan: Some("free".into()),
            tags: vec!["beta".into()],
            ..Profile::default()
        };
        let change = RawProfile {
            country: Given::Cleared,
            plan: Given::Set("pro".into()),
            ..RawProfile::default()
        }
        .check()
        .unwrap();
        let after = change.apply(&before);
        assert_eq!(after.country, None);
        assert_eq!(after.plan.as_deref(), Some("pro"));
        assert_eq!(after.tags, ["beta"]);
        assert!(ProfileChange::default().is_empty());
    }
}
