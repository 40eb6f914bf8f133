//! A transactional message's templates: one recipient, sent now, with
//! variables of its own beside `name` and `email` (a login code, a
//! receipt's total).
//!
//! The same bounds as a campaign's (fuel, output, no building of values),
//! checked at the door: every variable a part uses, on any branch, must be
//! `name`, `email` or one the request gives, so that a message is refused
//! rather than sent with a hole. A message is not marketing: it has no
//! unsubscribe link, and no footer is added.

use std::collections::BTreeMap;

use minijinja::Value;

use crate::{Rendered, Sources, TemplateError, Templates, PARTS};

/// The variables every message's templates see.
pub const RECIPIENT: [&str; 2] = ["name", "email"];

/// Most variables one message may give.
pub const MAX_VARIABLES: usize = 50;

/// Most characters of a variable's value.
pub const MAX_VALUE_CHARS: usize = 10_000;

/// A message's templates, compiled and checked against the variables it
/// gives.
#[derive(Debug)]
pub struct MessageTemplates(Templates);

impl MessageTemplates {
    /// Compiles `sources` and checks that every part uses only `name`,
    /// `email` and the names of `variables`; an error names the part and
    /// the variables missing.
    pub fn check(sources: &Sources, variables: &BTreeMap<String, String>) -> Result<Self, TemplateError> {
        let templates = Templates::compile_sources(sources)?;
        let known: Vec<&str> = RECIPIENT
            .into_iter()
            .chain(variables.keys().map(String::as_str))
            .collect();
        for part in PARTS {
            if part.pick(sources).is_none() {
                continue;
            }
            let missing = templates.variables_beyond(part, &known)?;
            if !missing.is_empty() {
                return Err(TemplateError::Missing(part, missing.join(", ")));
            }
        }
        Ok(Self(templates))
    }

    /// Renders every part for `name` at `email` with `variables`, within
    /// the bounds of a campaign's render, with no footer.
    pub fn render(
        &self,
        name: &str,
        email: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<Rendered, TemplateError> {
        let mut context: BTreeMap<&str, &str> = variables
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        context.insert("name", name);
        context.insert("email", email);
        self.0.render_in(&Value::from_serialize(&context), None)
    }
}

/// `variables` if there are at most [`MAX_VARIABLES`], none named as the
/// recipient's (`name`, `email`) or otherwise than a template identifier,
/// and each value at most [`MAX_VALUE_CHARS`]; otherwise what is wrong.
pub fn check_variables(variables: &BTreeMap<String, String>) -> Result<(), String> {
    if variables.len() > MAX_VARIABLES {
        return Err(format!(
            "variables: at most {MAX_VARIABLES}, not {}",
            variables.len()
        ));
    }
    for (key, value) in variables {
        if RECIPIENT.contains(&key.as_str()) {
            return Err(format!("variables: {key:?} is the recipient's, set by comms"));
        }
        let identifier = key
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && key.len() <= 64;
        if !identifier {
            return Err(format!(
                "variables: {key:?} is not a name templates can use (letters, digits and _, 64 at most)"
            ));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(format!("variables: {key:?} is over {MAX_VALUE_CHARS} characters"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Part;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn a_message_renders_its_variables_and_has_no_footer() {
        let sources = Sources {
            subject: "Your code, {{ name }}",
            body: "Code: {{ code }}",
            html: Some("<p>{{ code }} for {{ email }}</p>"),
        };
        let variables = vars(&[("code", "<123456>")]);
        let templates = MessageTemplates::check(&sources, &variables).unwrap();
        let rendered = templates.render("Ada", "ada@example.com", &variables).unwrap();
        assert_eq!(rendered.subject, "Your code, Ada");
        assert_eq!(rendered.body, "Code: <123456>");
        assert_eq!(
            rendered.html.as_deref(),
            Some("<p>&lt;123456&gt; for ada@example.com</p>"),
            "escaped in HTML, and no footer"
        );
    }

    #[test]
    fn a_variable_not_given_is_refused_even_on_a_branch_not_taken() {
        let sources = Sources::text("Hi", "{% if false %}{{ total }}{% endif %}{{ code }}");
        let error = MessageTemplates::check(&sources, &vars(&[("code", "1")])).unwrap_err();
        assert_eq!(error, TemplateError::Missing(Part::Body, "total".into()));
        assert!(error.to_string().contains("total"), "{error}");
        let link = MessageTemplates::check(&Sources::text("{{ unsubscribe_url }}", "x"), &vars(&[]));
        assert!(matches!(link, Err(TemplateError::Missing(Part::Subject, _))));
    }

    #[test]
    fn variables_are_bounded_and_cannot_stand_for_the_recipient() {
        assert!(check_variables(&vars(&[("code", "1"), ("_total2", "x")])).is_ok());
        assert!(check_variables(&vars(&[("name", "x")]))
            .unwrap_err()
            .contains("recipient"));
        assert!(check_variables(&vars(&[("a-b", "x")]))
            .unwrap_err()
            .contains("not a name"));
        assert!(check_variables(&vars(&[("1a", "x")])).is_err());
        let long = "x".repeat(MAX_VALUE_CHARS + 1);
        assert!(check_variables(&vars(&[("code", &long)]))
            .unwrap_err()
            .contains("over"));
        let many: BTreeMap<String, String> = (0..=MAX_VARIABLES)
            .map(|n| (format!("v{n}"), String::new()))
            .collect();
        assert!(check_variables(&many).unwrap_err().contains("at most"));
    }
}
