//! A campaign's templates: checked when the campaign is created, compiled
//! once per process, rendered for each recipient with a bounded cost and a
//! bounded output.
//!
//! Templates are minijinja and see two variables, `name` and `email`.
//! Anything else is an error ([`UndefinedBehavior::Strict`]), so a typo is
//! refused when the campaign is created rather than failing every recipient.
//!
//! Rendering runs arbitrary template code, so each render is bounded:
//! - **cost**: minijinja's fuel, [`FUEL`] instructions per part (two nested
//!   `range(100000)` loops would otherwise run 10^10 iterations);
//! - **output**: [`MAX_SUBJECT_BYTES`] / [`MAX_BODY_BYTES`], checked as the
//!   output is written (`{{ "x" * 100000000 }}` would otherwise make a
//!   100 MB body for every recipient).
//!
//! campaign-service renders new templates once for [`SAMPLE_NAME`] at
//! creation, with the same bounds, and refuses what fails; a template that
//! fails only for some recipients fails their notifications with the reason.
//!
//! Not bounded: the memory of a value built inside a template before it is
//! written (minijinja caps one string repetition at 100 MB, not chains of
//! concatenations); the source length limits keep such chains short.

use std::io;

use minijinja::{context, Environment, ErrorKind, UndefinedBehavior};

/// Most characters of a subject template.
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Most characters of a body template.
pub const MAX_BODY_CHARS: usize = 100_000;
/// Most bytes of a rendered subject.
pub const MAX_SUBJECT_BYTES: usize = 1_000;
/// Most bytes of a rendered body.
pub const MAX_BODY_BYTES: usize = 200_000;
/// Template instructions one part may run per render: far more than any
/// mail merge needs (the demo campaign's body takes a handful), and a few
/// milliseconds at most.
pub const FUEL: u64 = 50_000;

/// The recipient a new campaign's templates are test-rendered for.
pub const SAMPLE_NAME: &str = "Ada Lovelace";
/// The sample recipient's address.
pub const SAMPLE_EMAIL: &str = "ada.lovelace@example.com";

/// The two parts of a campaign's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The subject line.
    Subject,
    /// The plain-text body.
    Body,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Body => "body",
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Part::Subject => MAX_SUBJECT_BYTES,
            Part::Body => MAX_BODY_BYTES,
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a template was refused or could not be rendered; the message names
/// the part and the problem, for an API error or a notification's failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// The template does not parse.
    #[error("{0} is not a valid template: {1}")]
    Syntax(Part, String),
    /// The template uses a variable other than `name` and `email`.
    #[error("{0} uses an undefined variable (templates see `name` and `email`): {1}")]
    Undefined(Part, String),
    /// Rendering ran out of its instruction budget.
    #[error("{0} is too costly to render: it runs more than {FUEL} template instructions")]
    TooCostly(Part),
    /// The output went over its size limit.
    #[error("{0} renders to more than {1} bytes")]
    TooLarge(Part, usize),
    /// Any other failure while rendering.
    #[error("{0} cannot be rendered: {1}")]
    Render(Part, String),
}

/// A rendered subject and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// A campaign's subject and body, compiled.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Compiles `subject` and `body`; a syntax error names its part.
    pub fn compile(subject: &str, body: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        for (part, source) in [(Part::Subject, subject), (Part::Body, body)] {
            env.add_template_owned(part.name(), source.to_string())
                .map_err(|error| TemplateError::Syntax(part, detail(&error)))?;
        }
        Ok(Self { env })
    }

    /// Compiles `subject` and `body` and renders them for the sample
    /// recipient: what a new campaign must pass.
    pub fn check(subject: &str, body: &str) -> Result<(), TemplateError> {
        Self::compile(subject, body)?
            .render(SAMPLE_NAME, SAMPLE_EMAIL)
            .map(|_| ())
    }

    /// Renders both parts for the recipient `name` at `email`, each within
    /// its fuel and output size.
    pub fn render(&self, name: &str, email: &str) -> Result<Rendered, TemplateError> {
        Ok(Rendered {
            subject: self.render_part(Part::Subject, name, email)?,
            body: self.render_part(Part::Body, name, email)?,
        })
    }

    fn render_part(&self, part: Part, name: &str, email: &str) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(part.name())
            .map_err(|error| TemplateError::Render(part, detail(&error)))?;
        let mut out = Bounded::new(part.max_bytes());
        let rendered = template.render_captured_to(context! { name, email }, &mut out);
        if out.overflowed {
            return Err(TemplateError::TooLarge(part, part.max_bytes()));
        }
        rendered.map_err(|error| match error.kind() {
            ErrorKind::OutOfFuel => TemplateError::TooCostly(part),
            ErrorKind::UndefinedError => TemplateError::Undefined(part, detail(&error)),
            _ => TemplateError::Render(part, detail(&error)),
        })?;
        // Templates are UTF-8 text and write whole strings.
        String::from_utf8(out.bytes).map_err(|error| TemplateError::Render(part, error.to_string()))
    }
}

/// A minijinja error in one line, with where it happened.
fn detail(error: &minijinja::Error) -> String {
    match (error.detail(), error.line()) {
        (Some(detail), Some(line)) => format!("{detail} (line {line})"),
        (Some(detail), None) => detail.to_string(),
        (None, Some(line)) => format!("{} (line {line})", error.kind()),
        (None, None) => error.kind().to_string(),
    }
}

/// An output buffer that refuses to grow past its limit, so an oversized
/// render stops at the first write that crosses it.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("output over its size limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_body(body: &str) -> Result<(), TemplateError> {
        Templates::check("Hi {{ name }}", body)
    }

    #[test]
    fn templates_see_the_recipient() {
        let templates = Templates::compile("Hi {{ name }}", "Dear {{ name }} <{{ email }}>").unwrap();
        assert_eq!(
            templates.render("Ada", "ada@example.com").unwrap(),
            Rendered {
                subject: "Hi Ada".into(),
                body: "Dear Ada <ada@example.com>".into(),
            }
        );
    }

    #[test]
    fn syntax_errors_and_unknown_variables_name_their_part() {
        assert!(matches!(
            Templates::compile("Hi {{ name ", "b"),
            Err(TemplateError::Syntax(Part::Subject, _))
        ));
        let error = check_body("Dear {{ nope }}").unwrap_err();
        assert!(
            matches!(error, TemplateError::Undefined(Part::Body, _)),
            "{error}"
        );
        assert!(
            error.to_string().starts_with("body uses an undefined variable"),
            "{error}"
        );
    }

    #[test]
    fn a_render_over_its_fuel_stops() {
        let nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        assert_eq!(check_body(nested), Err(TemplateError::TooCostly(Part::Body)));
    }

    #[test]
    fn a_render_over_its_size_stops() {
        assert_eq!(
            check_body(r#"{{ "x" * 100000000 }}"#),
            Err(TemplateError::TooLarge(Part::Body, MAX_BODY_BYTES))
        );
        assert_eq!(
            Templates::check(r#"{{ name * 100 }}"#, "b"),
            Err(TemplateError::TooLarge(Part::Subject, MAX_SUBJECT_BYTES))
        );
        assert!(
            check_body(&"x".repeat(MAX_BODY_BYTES)).is_ok(),
            "up to the limit is fine"
        );
    }
}
