//! A new campaign as the API accepts it: parsed once, valid from then on.
//!
//! Its templates are not only parsed but rendered once for a sample
//! recipient, with the fuel and output bounds every recipient's render has
//! (see the `templates` crate): an undefined variable (on any branch), a
//! construct that builds values, a render too costly
//! or an output too large is refused here, with a 400, instead of failing
//! every recipient later.
//!
//! A campaign has a text body, an HTML body, or both. `body` is required
//! unless `html` is given; a campaign with `html` and no `body` (absent or
//! `null`) has its text part derived from each recipient's rendered HTML,
//! and is stored, announced and served with an empty `body` (the `templates`
//! crate's convention: an empty text body beside an HTML one is derived).
//! A `body` that is given must not be empty, as before.

use serde::Deserialize;
use templates::{Sources, Templates, MAX_BODY_CHARS, MAX_SUBJECT_CHARS};

use crate::store::Campaign;

/// The JSON body of `POST /api/v1/campaigns`: a name and the templates.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewCampaignRequest {
    /// Display name, 1 to 200 characters (spaces around it trimmed), not
    /// only spaces.
    #[schema(
        example = "Spring news",
        min_length = 1,
        pattern = r"^\s*\S([\s\S]{0,198}\S)?\s*$"
    )]
    pub name: String,
    /// The subject, body and HTML templates.
    #[serde(flatten)]
    pub templates: TemplatesRequest,
    /// When to start sending (RFC 3339, with its offset, in the future):
    /// the campaign is `scheduled` until then. Absent: now.
    #[serde(default)]
    #[schema(format = DateTime, example = "2026-12-24T09:00:00+01:00")]
    pub send_at: Option<String>,
    /// Who it goes to: a filter over the users' attributes (the grammar:
    /// docs/campaigns.md, "Segments"), at most 2,000 characters; an invalid one
    /// is a 400 naming the character it fails at. Absent: every user.
    /// user-service's `GET /api/v1/users/count?filter=…` says how many
    /// it selects.
    #[serde(default)]
    #[schema(
        example = "country = 'DE' and plan in ('pro', 'team') and 'beta' in tags",
        min_length = 1,
        max_length = 2000
    )]
    pub audience: Option<String>,
    /// The campaign's own send rate, emails a second (more than 0, at
    /// most 100,000; a fraction for slower than one a second), under
    /// email-service's shared rate: a slow announcement beside a fast
    /// campaign. Absent: as fast as the shared limits allow.
    #[serde(default)]
    #[schema(example = 20.0, exclusive_minimum = 0.0, maximum = 100_000.0)]
    pub rate_per_s: Option<f64>,
}

/// A campaign's templates as the API takes them, in a new campaign, a
/// preview and a test send. They see `{{ name }}`, `{{ email }}` and
/// `{{ unsubscribe_url }}`.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct TemplatesRequest {
    /// Subject template, one line of 1 to 500 characters, not only
    /// spaces; a valid template that renders within its bounds.
    #[schema(
        example = "Hello {{ name }}",
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\r\n]*\S[^\r\n]*$"
    )]
    pub subject: String,
    /// Text body template, 1 to 100,000 characters, not only spaces; a
    /// valid template that renders within its bounds. Required unless
    /// `html` is given: without it, the text part is derived from the
    /// rendered HTML (and the campaign's `body` is served empty).
    #[serde(default)]
    #[schema(
        example = "Dear {{ name }}, this was sent to {{ email }}.",
        min_length = 1,
        max_length = 100_000,
        pattern = r"\S"
    )]
    pub body: Option<String>,
    /// HTML body template, 1 to 100,000 characters, not only spaces; a
    /// valid template that renders within its bounds, with the recipient's
    /// values HTML-escaped. The email is then `multipart/alternative`
    /// (text and HTML); a body without `{{ unsubscribe_url }}` gets an
    /// unsubscribe link before its `</body>`. Absent: a text-only email.
    #[serde(default)]
    #[schema(
        example = "<p>Dear {{ name }}, <a href=\"{{ unsubscribe_url }}\">unsubscribe</a></p>",
        min_length = 1,
        max_length = 100_000,
        pattern = r"\S"
    )]
    pub html: Option<String>,
}

/// A campaign's templates, checked: each within its length, and together
/// compiled and rendered for the sample recipient within their bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTemplates {
    /// Subject template, 1 to 500 characters.
    pub subject: String,
    /// Text body template, up to 100,000 characters; empty beside an HTML
    /// body: derived from it.
    pub body: String,
    /// HTML body template, 1 to 100,000 characters, if any.
    pub html: Option<String>,
}

impl CheckedTemplates {
    /// Checks `request`; the error names the field and what is wrong.
    /// Test-rendering can take a while (up to the templates' fuel): call
    /// it off the async threads.
    pub fn parse(request: TemplatesRequest) -> Result<Self, String> {
        let checked = Self::within_bounds(request)?;
        Templates::check_sources(&checked.sources()).map_err(|error| error.to_string())?;
        Ok(checked)
    }

    /// The sources of these templates.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            subject: &self.subject,
            body: &self.body,
            html: self.html.as_deref(),
        }
    }

    /// `request` if its parts are within their lengths and shapes (a
    /// one-line subject, a body unless there is HTML); the templates
    /// themselves are not checked.
    pub fn within_bounds(request: TemplatesRequest) -> Result<Self, String> {
        let TemplatesRequest { subject, body, html } = request;
        check_length("subject", &subject, MAX_SUBJECT_CHARS)?;
        if subject.contains(['\r', '\n']) {
            return Err("subject must be a single line".into());
        }
        if let Some(html) = &html {
            check_length("html", html, MAX_BODY_CHARS)?;
        }
        let body = match (body, &html) {
            (Some(body), _) => {
                check_length("body", &body, MAX_BODY_CHARS)?;
                body
            }
            (None, Some(_)) => String::new(),
            (None, None) => return Err("body is required unless html is given".into()),
        };
        Ok(Self { subject, body, html })
    }
}

/// A campaign whose fields are known to be usable.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Subject template that renders within its bounds, 1 to 500 characters.
    pub subject: String,
    /// Body template that renders within its bounds, up to 100,000
    /// characters (empty: derived from `html`).
    pub body: String,
    /// HTML body template that renders within its bounds, if any.
    pub html: Option<String>,
    /// When to start sending, in ms since the epoch (in the future when
    /// it was asked for); `None`: now.
    pub send_at: Option<i64>,
    /// Its audience filter, as given (it parses); `None`: every user.
    pub audience: Option<String>,
    /// The finished campaign whose recipients not reached (`failed`,
    /// `dead_lettered`) this one goes to instead ([`NewCampaign::resend`]).
    pub resend_of: Option<String>,
    /// Its own send rate, emails a second; `None`: the shared limits only.
    pub rate_per_s: Option<f64>,
}

impl NewCampaign {
    /// Checks each field; the error names the field and what is wrong.
    /// Test-rendering the templates can take a while (up to their fuel):
    /// call it off the async threads.
    pub fn parse(request: NewCampaignRequest) -> Result<Self, String> {
        let name = request.name.trim().to_string();
        check_length("name", &name, MAX_NAME_CHARS)?;
        let CheckedTemplates { subject, body, html } = CheckedTemplates::parse(request.templates)?;
        let send_at = request.send_at.as_deref().map(parse_send_at).transpose()?;
        let audience = request.audience.map(check_audience).transpose()?;
        let rate_per_s = request.rate_per_s.map(check_rate).transpose()?;
        Ok(Self {
            name,
            subject,
            body,
            html,
            send_at,
            audience,
            resend_of: None,
            rate_per_s,
        })
    }

    /// The demo campaign of `GET /api/v1/campaign/create`.
    pub fn demo() -> Self {
        Self {
            name: "Demo campaign".into(),
            subject: "Hello {{ name }}, news from comms".into(),
            body: "Dear {{ name }},\n\nthis is the comms demo campaign, sent to {{ email }}.\n\nBest regards,\nthe comms team\n"
                .into(),
            html: None,
            send_at: None,
            audience: None,
            resend_of: None,
            rate_per_s: None,
        }
    }

    /// A new campaign to the recipients of finished campaign `of` that
    /// were not reached, with its templates, named after it.
    pub fn resend(of: &Campaign) -> Self {
        let mut name = format!("{} (resend)", of.name);
        if name.chars().count() > MAX_NAME_CHARS {
            name = format!(
                "{}… (resend)",
                of.name.chars().take(MAX_NAME_CHARS - 10).collect::<String>()
            );
        }
        Self {
            name,
            subject: of.subject.clone(),
            body: of.body.clone(),
            html: of.html.clone(),
            send_at: None,
            audience: None,
            resend_of: Some(of.id.clone()),
            rate_per_s: of.rate_per_s,
        }
    }
}

/// The longest name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// The fastest rate a campaign may ask for, emails a second.
const MAX_RATE_PER_S: f64 = 100_000.0;

/// A `rate_per_s` that is a rate (more than 0, at most
/// [`MAX_RATE_PER_S`]), or why not.
fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE_PER_S {
        Ok(rate)
    } else {
        Err(format!(
            "rate_per_s must be more than 0 and at most {MAX_RATE_PER_S} emails a second, not {rate}"
        ))
    }
}

/// An audience filter that parses ([`contracts::audience`]), or why not:
/// what is wrong, and at which character.
fn check_audience(filter: String) -> Result<String, String> {
    contracts::audience::Filter::parse(&filter).map_err(|error| format!("audience: {error}"))?;
    Ok(filter)
}

/// A `send_at` (RFC 3339, as `2026-12-24T09:00:00+01:00`) in ms since the
/// epoch; one that does not parse, or is not in the future, is refused.
pub fn parse_send_at(value: &str) -> Result<i64, String> {
    let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|error| format!("send_at must be an RFC 3339 date and time with its offset ({error})"))?;
    let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| "send_at is out of range".to_string())?;
    if ms <= servicekit::now_ms() {
        return Err(format!("send_at must be in the future: {value} has passed"));
    }
    Ok(ms)
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.chars().count() > max {
        return Err(format!("{field} must be at most {max} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, subject: &str, body: &str) -> NewCampaignRequest {
        NewCampaignRequest {
            name: name.into(),
            templates: TemplatesRequest {
                subject: subject.into(),
                body: Some(body.into()),
                html: None,
            },
            send_at: None,
            audience: None,
            rate_per_s: None,
        }
    }

    #[test]
    fn a_resend_is_named_after_its_campaign_within_the_name_s_bound() {
        let mut of = NewCampaign::demo();
        of.name = "x".repeat(200);
        let campaign = Campaign {
            id: "c1".into(),
            name: of.name.clone(),
            subject: of.subject.clone(),
            body: of.body.clone(),
            status: crate::store::CampaignStatus::Completed,
            progress: crate::store::Progress::default(),
            created_at: 0,
            completed_at: Some(1),
            send_at: None,
            started_at: None,
            audience: None,
            resend_of: None,
            html: Some("<p>Hi</p>".into()),
            rate_per_s: Some(2.5),
        };
        let resend = NewCampaign::resend(&campaign);
        assert_eq!(resend.html, campaign.html, "the same templates");
        assert_eq!(resend.rate_per_s, Some(2.5), "at the same rate");
        assert_eq!(resend.name.chars().count(), MAX_NAME_CHARS);
        assert!(resend.name.ends_with("… (resend)"));
        assert_eq!(resend.resend_of.as_deref(), Some("c1"));
    }

    #[test]
    fn a_rate_is_a_positive_number_up_to_its_bound() {
        for good in [0.5, 20.0, 100_000.0] {
            let mut request = request("n", "s", "b");
            request.rate_per_s = Some(good);
            assert_eq!(NewCampaign::parse(request).unwrap().rate_per_s, Some(good));
        }
        for bad in [0.0, -1.0, 100_001.0, f64::NAN, f64::INFINITY] {
            let mut request = request("n", "s", "b");
            request.rate_per_s = Some(bad);
            let error = NewCampaign::parse(request).unwrap_err();
            assert!(
                error.starts_with("rate_per_s must be more than 0"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn an_audience_is_a_filter_that_parses_and_a_bad_one_names_where_it_fails() {
        let mut good = request("n", "s", "b");
        good.audience = Some("country = 'DE' and 'beta' in tags".into());
        let parsed = NewCampaign::parse(good).unwrap();
        assert_eq!(
            parsed.audience.as_deref(),
            Some("country = 'DE' and 'beta' in tags")
        );
        let mut bad = request("n", "s", "b");
        bad.audience = Some("contry = 'DE'".into());
        let error = NewCampaign::parse(bad).unwrap_err();
        assert!(
            error.starts_with("audience: unknown attribute 'contry'"),
            "{error}"
        );
        assert!(error.ends_with("at 0"), "{error}");
    }

    #[test]
    fn send_at_is_a_future_rfc_3339_time_with_its_offset() {
        let at = |send_at: &str| {
            let mut request = request("n", "s", "b");
            request.send_at = Some(send_at.into());
            NewCampaign::parse(request).map(|campaign| campaign.send_at)
        };
        assert_eq!(at("2999-01-01T00:00:00Z"), Ok(Some(32_472_144_000_000)));
        assert_eq!(at("2999-01-01T01:00:00+01:00"), Ok(Some(32_472_144_000_000)));
        assert!(at("2020-01-01T00:00:00Z").unwrap_err().contains("has passed"));
        for bad in ["tomorrow", "2999-01-01", "2999-01-01T00:00:00"] {
            assert!(
                at(bad).unwrap_err().starts_with("send_at must be an RFC 3339"),
                "{bad}"
            );
        }
    }

    #[test]
    fn valid_input_is_accepted_and_bad_input_names_its_field() {
        assert!(NewCampaign::parse(request("Spring", "Hi {{ name }}", "Body")).is_ok());
        assert_eq!(
            NewCampaign::parse(request(" ", "s", "b")).unwrap_err(),
            "name must not be empty"
        );
        assert!(NewCampaign::parse(request("n", "Hi {{ name ", "b"))
            .unwrap_err()
            .starts_with("subject is not a valid template"));
        assert_eq!(
            NewCampaign::parse(request("n", "a\nb", "b")).unwrap_err(),
            "subject must be a single line"
        );
        assert!(NewCampaign::parse(request(&"x".repeat(201), "s", "b")).is_err());
        assert!(NewCampaign::parse(request("n", "s", "Dear {{ nope }}"))
            .unwrap_err()
            .starts_with("body uses an undefined variable"));
    }

    #[test]
    fn a_body_is_required_unless_html_is_given_then_derived() {
        let mut html_only = request("n", "s", "b");
        html_only.templates.body = None;
        assert_eq!(
            NewCampaign::parse(html_only).unwrap_err(),
            "body is required unless html is given"
        );
        let mut html_only = request("n", "s", "b");
        html_only.templates.body = None;
        html_only.templates.html = Some("<p>Hi {{ name }}</p>".into());
        let parsed = NewCampaign::parse(html_only).unwrap();
        assert_eq!(
            (parsed.body.as_str(), parsed.html.as_deref()),
            ("", Some("<p>Hi {{ name }}</p>"))
        );
        for (html, error) in [
            (" ".to_string(), "html must not be empty"),
            (
                "x".repeat(MAX_BODY_CHARS + 1),
                "html must be at most 100000 characters",
            ),
        ] {
            let mut bad = request("n", "s", "b");
            bad.templates.html = Some(html);
            assert_eq!(NewCampaign::parse(bad).unwrap_err(), error);
        }
        let mut bad = request("n", "s", "b");
        bad.templates.html = Some("<p>{{ nope }}</p>".into());
        assert!(NewCampaign::parse(bad)
            .unwrap_err()
            .starts_with("html uses an undefined variable"));
    }

    #[test]
    fn the_demo_campaign_is_valid() {
        let demo = NewCampaign::demo();
        let again = NewCampaign::parse(request(&demo.name, &demo.subject, &demo.body)).unwrap();
        assert_eq!(again, demo);
    }
}
