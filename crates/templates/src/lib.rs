//! A campaign's templates: checked when the campaign is created, compiled
//! once per process, rendered for each recipient with a bounded cost and a
//! bounded output.
//!
//! Templates are minijinja and see three variables, the recipient's `name`
//! and `email`, and `unsubscribe_url`, their one-click unsubscribe link. A
//! body that does not place the link gets it in a short footer
//! ([`footer`]): every campaign email offers a way out.
//! Anything else is an error ([`UndefinedBehavior::Strict`]), so a typo is
//! refused when the campaign is created rather than failing every recipient.
//!
//! Rendering runs arbitrary template code, so each render is bounded:
//! - **cost**: minijinja's fuel, [`FUEL`] instructions per part (two nested
//!   loops over 1,000 characters would otherwise run 10^6 iterations);
//! - **output**: [`MAX_SUBJECT_BYTES`] / [`MAX_BODY_BYTES`], checked as the
//!   output is written (a loop over 1,000 characters writing 100 KB each
//!   would otherwise make a 100 MB body for every recipient);
//! - **memory**: templates may test, loop, filter and write values, never
//!   build them: no `set`, `macro` or other statements than `if` and `for`,
//!   no `+`, `*` or `~`, a few filters and no global functions (see the
//!   `shape` module), refused when compiled; `{% set a = "x" * 100000000
//!   %}{% set a = a ~ a %}` would otherwise grow memory without writing a
//!   byte.
//!
//! campaign-service checks new templates ([`Templates::check`]): any
//! variable but the recipient's is refused, even on a branch not taken, and
//! they are rendered once for [`SAMPLE_NAME`], with the same bounds; a
//! template that fails only for some recipients fails their notifications
//! with the reason.

use std::io;

use minijinja::{context, Environment, ErrorKind, UndefinedBehavior};

mod shape;

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

/// The sample recipient's unsubscribe link.
pub const SAMPLE_UNSUBSCRIBE_URL: &str = "http://localhost:8080/unsubscribe/sample";

/// The sample recipient, as a new campaign is test-rendered for them.
pub const SAMPLE: Recipient<'static> = Recipient {
    name: SAMPLE_NAME,
    email: SAMPLE_EMAIL,
    unsubscribe_url: SAMPLE_UNSUBSCRIBE_URL,
};

/// The variables a render sees: the recipient's.
const RECIPIENT: [&str; 3] = ["name", "email", "unsubscribe_url"];

/// Whom one render is for: what the templates see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient<'a> {
    /// Their name.
    pub name: &'a str,
    /// Their address.
    pub email: &'a str,
    /// Their one-click unsubscribe link.
    pub unsubscribe_url: &'a str,
}

/// What a body that does not place `{{ unsubscribe_url }}` ends with.
pub fn footer(unsubscribe_url: &str) -> String {
    format!("\n\n--\nTo stop receiving these emails, unsubscribe: {unsubscribe_url}\n")
}

/// The parts, in the order they are compiled and checked.
const PARTS: [Part; 2] = [Part::Subject, Part::Body];

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

    fn pick<'a>(self, subject: &'a str, body: &'a str) -> &'a str {
        match self {
            Part::Subject => subject,
            Part::Body => body,
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
    /// The template uses a variable other than the recipient's.
    #[error("{0} uses an undefined variable (templates see `name`, `email` and `unsubscribe_url`): {1}")]
    Undefined(Part, String),
    /// The template uses a construct that could build values of any size.
    #[error(
        "{0} uses {1}, which templates may not use: they can test (`if`), loop (`for`), \
         filter and write values, but not build them (no `set`, `macro`, `+`, `*` or `~`)"
    )]
    Refused(Part, String),
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
    /// Whether the body places the unsubscribe link itself; if not, a
    /// render appends [`footer`].
    body_places_link: bool,
}

impl Templates {
    /// Compiles `subject` and `body`; a syntax error or a refused construct
    /// names its part. Refusing here, not only at creation, keeps a
    /// campaign stored before a rule existed from growing memory at render.
    pub fn compile(subject: &str, body: &str) -> Result<Self, TemplateError> {
        let mut env = shape::environment();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        for (part, source) in PARTS.map(|part| (part, part.pick(subject, body))) {
            env.add_template_owned(part.name(), source.to_string())
                .map_err(|error| TemplateError::Syntax(part, detail(&error)))?;
            if let Some(construct) = shape::refused(source) {
                return Err(TemplateError::Refused(part, construct));
            }
        }
        let body_places_link = env
            .get_template(Part::Body.name())
            .is_ok_and(|template| template.undeclared_variables(false).contains("unsubscribe_url"));
        Ok(Self {
            env,
            body_places_link,
        })
    }

    /// Compiles `subject` and `body`, refuses any variable but the
    /// recipient's, even on a branch the sample does not take, and renders
    /// them for the sample recipient: what a new campaign must pass.
    pub fn check(subject: &str, body: &str) -> Result<(), TemplateError> {
        let templates = Self::compile(subject, body)?;
        for part in PARTS {
            templates.check_variables(part)?;
        }
        templates.render(&SAMPLE).map(|_| ())
    }

    fn check_variables(&self, part: Part) -> Result<(), TemplateError> {
        let template = self
            .env
            .get_template(part.name())
            .map_err(|error| TemplateError::Render(part, detail(&error)))?;
        let mut unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|variable| !RECIPIENT.contains(&variable.as_str()))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        Err(TemplateError::Undefined(part, unknown.join(", ")))
    }

    /// Renders both parts for `recipient`, each within its fuel and output
    /// size; the body ends with [`footer`] unless it places the link.
    pub fn render(&self, recipient: &Recipient) -> Result<Rendered, TemplateError> {
        let mut body = self.render_part(Part::Body, recipient)?;
        if !self.body_places_link {
            body.push_str(&footer(recipient.unsubscribe_url));
        }
        Ok(Rendered {
            subject: self.render_part(Part::Subject, recipient)?,
            body,
        })
    }

    fn render_part(&self, part: Part, recipient: &Recipient) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(part.name())
            .map_err(|error| TemplateError::Render(part, detail(&error)))?;
        let mut out = Bounded::new(part.max_bytes());
        let Recipient {
            name,
            email,
            unsubscribe_url,
        } = *recipient;
        let rendered = template.render_captured_to(context! { name, email, unsubscribe_url }, &mut out);
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

    const LINK: &str = "https://mail.example.com/unsubscribe/t0k3n";

    fn recipient<'a>(name: &'a str, email: &'a str) -> Recipient<'a> {
        Recipient {
            name,
            email,
            unsubscribe_url: LINK,
        }
    }

    #[test]
    fn templates_see_the_recipient() {
        let templates = Templates::compile("Hi {{ name }}", "Dear {{ name }} <{{ email }}>").unwrap();
        assert_eq!(
            templates.render(&recipient("Ada", "ada@example.com")).unwrap(),
            Rendered {
                subject: "Hi Ada".into(),
                body: format!("Dear Ada <ada@example.com>{}", footer(LINK)),
            }
        );
    }

    #[test]
    fn a_body_that_places_the_link_gets_no_footer() {
        let body = "Dear {{ name }}. Leave: {{ unsubscribe_url }}";
        Templates::check("Hi", body).unwrap();
        let rendered = Templates::compile("Hi", body)
            .unwrap()
            .render(&recipient("Ada", "ada@example.com"))
            .unwrap();
        assert_eq!(rendered.body, format!("Dear Ada. Leave: {LINK}"));
        assert!(matches!(
            Templates::check("{{ unsubscribe_link }}", "b"),
            Err(TemplateError::Undefined(Part::Subject, _))
        ));
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
    fn unknown_variables_are_refused_on_every_branch() {
        let error = check_body(r#"{% if name != "Ada Lovelace" %}{{ nope }}{% endif %}"#).unwrap_err();
        assert_eq!(error, TemplateError::Undefined(Part::Body, "nope".into()));
        assert_eq!(
            Templates::check("{% if false %}{{ b }}{{ a }}{% endif %}", "x"),
            Err(TemplateError::Undefined(Part::Subject, "a, b".into()))
        );
        assert_eq!(
            check_body("{% for i in range(3) %}{% endfor %}"),
            Err(TemplateError::Undefined(Part::Body, "range".into())),
            "there are no global functions"
        );
    }

    #[test]
    fn constructs_that_build_values_are_refused() {
        let hostile = r#"{% set a = "x"*100000000 %}{% set a = a ~ a %}{% set a = a ~ a %}"#;
        let error = check_body(hostile).unwrap_err();
        assert_eq!(
            error,
            TemplateError::Refused(Part::Body, "`set` statements".into())
        );
        assert!(
            error
                .to_string()
                .starts_with("body uses `set` statements, which templates may not use"),
            "{error}"
        );
        for (source, construct) in [
            (r#"{{ "x" * 3 }}"#, "the `*` operator"),
            ("{{ name ~ email }}", "the `~` operator"),
            ("{{ [name] + [email] }}", "the `+` operator"),
            ("{% macro m() %}x{% endmacro %}", "`macro` statements"),
            ("{%- with a = name %}{% endwith %}", "`with` statements"),
            ("{% filter upper %}x{% endfilter %}", "`filter` statements"),
        ] {
            assert_eq!(
                Templates::compile("s", source).unwrap_err(),
                TemplateError::Refused(Part::Body, construct.into()),
                "{source}"
            );
        }
        assert!(
            matches!(
                check_body("{{ name|center(1000000000) }}"),
                Err(TemplateError::Render(Part::Body, _))
            ),
            "only a few filters exist"
        );
    }

    #[test]
    fn conditions_loops_filters_and_tests_still_work() {
        let body = r#"{% if name is startingwith("A") %}Dear {{ name|split|first|upper }}{% elif email %}Hi{% else %}-{% endif %}
{% for part in name|split %}{{ loop.index }}={{ part|lower|reverse }} {% endfor %}{{ "a*b~c+d" }}{% raw %}{% set %}{% endraw %}"#;
        let templates = Templates::compile("{{ name|default(\"you\")|title }}", body).unwrap();
        Templates::check("{{ name|default(\"you\")|title }}", body).unwrap();
        assert_eq!(
            templates
                .render(&recipient("ada lovelace", "ada@example.com"))
                .unwrap(),
            Rendered {
                subject: "Ada Lovelace".into(),
                body: format!("Hi\n1=ada 2=ecalevol a*b~c+d{{% set %}}{}", footer(LINK)),
            }
        );
    }

    #[test]
    fn a_render_over_its_fuel_stops() {
        let chars = "x".repeat(300);
        let nested =
            format!("{{% for i in \"{chars}\" %}}{{% for j in \"{chars}\" %}}{{% endfor %}}{{% endfor %}}");
        assert_eq!(check_body(&nested), Err(TemplateError::TooCostly(Part::Body)));
    }

    #[test]
    fn a_render_over_its_size_stops() {
        let body = format!("{{% for i in [1, 2, 3] %}}{}{{% endfor %}}", "x".repeat(100_000));
        assert_eq!(
            check_body(&body),
            Err(TemplateError::TooLarge(Part::Body, MAX_BODY_BYTES))
        );
        let subject = format!("{{% for c in name %}}{}{{% endfor %}}", "x".repeat(100));
        assert_eq!(
            Templates::check(&subject, "b"),
            Err(TemplateError::TooLarge(Part::Subject, MAX_SUBJECT_BYTES))
        );
        assert!(
            check_body(&"x".repeat(MAX_BODY_BYTES)).is_ok(),
            "up to the limit is fine"
        );
    }
}
