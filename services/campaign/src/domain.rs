//! A new campaign as the API accepts it: parsed once, valid from then on.
//!
//! Its templates are not only parsed but rendered once for a sample
//! recipient, with the fuel and output bounds every recipient's render has
//! (see the `templates` crate): an undefined variable (on any branch), a
//! construct that builds values, a render too costly
//! or an output too large is refused here, with a 400, instead of failing
//! every recipient later.

use serde::Deserialize;
use templates::{Templates, MAX_BODY_CHARS, MAX_SUBJECT_CHARS};

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
    /// The subject and body templates.
    #[serde(flatten)]
    pub templates: TemplatesRequest,
}

/// A campaign's two templates as the API takes them, in a new campaign
/// and in a preview. They see `{{ name }}` and `{{ email }}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    /// Body template, 1 to 100,000 characters, not only spaces; a valid
    /// template that renders within its bounds.
    #[schema(
        example = "Dear {{ name }}, this was sent to {{ email }}.",
        min_length = 1,
        max_length = 100_000,
        pattern = r"\S"
    )]
    pub body: String,
}

/// A campaign whose fields are known to be usable.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Subject template that renders within its bounds, 1 to 500 characters.
    pub subject: String,
    /// Body template that renders within its bounds, 1 to 100,000 characters.
    pub body: String,
}

impl NewCampaign {
    /// Checks each field; the error names the field and what is wrong.
    /// Test-rendering the templates can take a while (up to their fuel):
    /// call it off the async threads.
    pub fn parse(request: NewCampaignRequest) -> Result<Self, String> {
        let name = request.name.trim().to_string();
        check_length("name", &name, 200)?;
        let TemplatesRequest { subject, body } = request.templates;
        check_length("subject", &subject, MAX_SUBJECT_CHARS)?;
        check_length("body", &body, MAX_BODY_CHARS)?;
        if subject.contains(['\r', '\n']) {
            return Err("subject must be a single line".into());
        }
        Templates::check(&subject, &body).map_err(|error| error.to_string())?;
        Ok(Self { name, subject, body })
    }

    /// The demo campaign of `GET /api/v1/campaign/create`.
    pub fn demo() -> Self {
        Self {
            name: "Demo campaign".into(),
            subject: "Hello {{ name }}, news from comms".into(),
            body: "Dear {{ name }},\n\nthis is the comms demo campaign, sent to {{ email }}.\n\nBest regards,\nthe comms team\n"
                .into(),
        }
    }
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
                body: body.into(),
            },
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
    fn the_demo_campaign_is_valid() {
        let demo = NewCampaign::demo();
        let again = NewCampaign::parse(request(&demo.name, &demo.subject, &demo.body)).unwrap();
        assert_eq!(again, demo);
    }
}
