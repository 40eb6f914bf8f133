//! A campaign's templates: checked when the campaign is created, compiled
//! once per process, rendered for each recipient with a bounded cost and a
//! bounded output.
//!
//! Templates are minijinja and see three variables, the recipient's `name`
//! and `email`, and `unsubscribe_url`, their one-click unsubscribe link. A
//! body that does not place the link gets it in a short footer
//! ([`footer`], [`html::footer`] for an HTML body): every campaign email
//! offers a way out.
//!
//! A campaign has a subject, a text body and, optionally, an HTML body
//! ([`Sources`]). The HTML body is rendered with HTML auto-escaping, so a
//! recipient's name or address can never inject markup; the subject and
//! text body are not escaped (they are not HTML). An empty text body beside
//! an HTML one means "derive the text part from the HTML": each
//! recipient's text part is then their rendered HTML turned into text
//! ([`html::to_text`]).
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

use minijinja::{context, AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

mod bounded;
pub mod html;
pub mod message;
mod shape;

use bounded::Bounded;

/// Most characters of a subject template.
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Most characters of a body template (text or HTML).
pub const MAX_BODY_CHARS: usize = 100_000;
/// Most bytes of a rendered subject.
pub const MAX_SUBJECT_BYTES: usize = 1_000;
/// Most bytes of a rendered body (text or HTML, each).
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
pub(crate) const PARTS: [Part; 3] = [Part::Subject, Part::Body, Part::Html];

/// The parts of a campaign's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The subject line.
    Subject,
    /// The plain-text body.
    Body,
    /// The HTML body, if any.
    Html,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Body => "body",
            Part::Html => "html",
        }
    }

    pub(crate) fn pick<'a>(self, sources: &Sources<'a>) -> Option<&'a str> {
        match self {
            Part::Subject => Some(sources.subject),
            Part::Body => Some(sources.body),
            Part::Html => sources.html,
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Part::Subject => MAX_SUBJECT_BYTES,
            Part::Body | Part::Html => MAX_BODY_BYTES,
        }
    }
}

/// A campaign's template sources, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources<'a> {
    /// The subject template.
    pub subject: &'a str,
    /// The text body template; empty beside an HTML body: derived from it.
    pub body: &'a str,
    /// The HTML body template, if the campaign has one.
    pub html: Option<&'a str>,
}

impl<'a> Sources<'a> {
    /// A text-only campaign's sources.
    pub fn text(subject: &'a str, body: &'a str) -> Self {
        Self {
            subject,
            body,
            html: None,
        }
    }

    /// Whether the text part is derived from the HTML: an HTML body and
    /// an empty text one.
    pub fn derives_text(&self) -> bool {
        self.html.is_some() && self.body.is_empty()
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
    /// A message's template uses a variable the message does not give
    /// ([`message`]).
    #[error(
        "{0} uses variables the message does not give (it sees `name`, `email` and its `variables`): {1}"
    )]
    Missing(Part, String),
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
    /// The plain-text body (derived from the HTML when the campaign has no
    /// text template).
    pub body: String,
    /// The HTML body, when the campaign has one.
    pub html: Option<String>,
}

/// A campaign's templates, compiled.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Whether the body places the unsubscribe link itself; if not, a
    /// render appends [`footer`].
    body_places_link: bool,
    /// Whether there is an HTML body, and whether it places the link (if
    /// not, a render adds [`html::footer`]).
    html: Option<bool>,
    /// Whether the text part is derived from the rendered HTML.
    derives_text: bool,
}

impl Templates {
    /// Compiles a text-only campaign's `subject` and `body`.
    pub fn compile(subject: &str, body: &str) -> Result<Self, TemplateError> {
        Self::compile_sources(&Sources::text(subject, body))
    }

    /// Compiles `sources`; a syntax error or a refused construct names its
    /// part. Refusing here, not only at creation, keeps a campaign stored
    /// before a rule existed from growing memory at render. The HTML part
    /// is compiled with HTML auto-escaping, the others without.
    pub fn compile_sources(sources: &Sources) -> Result<Self, TemplateError> {
        let mut env = shape::environment();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        let html_name = Part::Html.name();
        env.set_auto_escape_callback(move |name| {
            if name == html_name {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for part in PARTS {
            let Some(source) = part.pick(sources) else {
                continue;
            };
            env.add_template_owned(part.name(), source.to_string())
                .map_err(|error| TemplateError::Syntax(part, detail(&error)))?;
            if let Some(construct) = shape::refused(source) {
                return Err(TemplateError::Refused(part, construct));
            }
        }
        let places_link = |part: Part| {
            env.get_template(part.name())
                .is_ok_and(|template| template.undeclared_variables(false).contains("unsubscribe_url"))
        };
        let body_places_link = places_link(Part::Body);
        let html = sources.html.map(|_| places_link(Part::Html));
        Ok(Self {
            env,
            body_places_link,
            html,
            derives_text: sources.derives_text(),
        })
    }

    /// Compiles a text-only campaign's templates and checks them as
    /// [`Templates::check_sources`] does.
    pub fn check(subject: &str, body: &str) -> Result<(), TemplateError> {
        Self::check_sources(&Sources::text(subject, body))
    }

    /// Compiles `sources`, refuses any variable but the recipient's, even
    /// on a branch the sample does not take, and renders them for the
    /// sample recipient: what a new campaign must pass.
    pub fn check_sources(sources: &Sources) -> Result<(), TemplateError> {
        let templates = Self::compile_sources(sources)?;
        for part in PARTS {
            if part.pick(sources).is_some() {
                templates.check_variables(part)?;
            }
        }
        templates.render(&SAMPLE).map(|_| ())
    }

    fn check_variables(&self, part: Part) -> Result<(), TemplateError> {
        let unknown = self.variables_beyond(part, &RECIPIENT)?;
        if unknown.is_empty() {
            return Ok(());
        }
        Err(TemplateError::Undefined(part, unknown.join(", ")))
    }

    /// The variables `part` uses, on any branch, that are not in `known`,
    /// sorted.
    pub(crate) fn variables_beyond(&self, part: Part, known: &[&str]) -> Result<Vec<String>, TemplateError> {
        let template = self
            .env
            .get_template(part.name())
            .map_err(|error| TemplateError::Render(part, detail(&error)))?;
        let mut unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|variable| !known.contains(&variable.as_str()))
            .collect();
        unknown.sort();
        Ok(unknown)
    }

    /// Renders every part for `recipient`, each within its fuel and
    /// output size; a body ends with its footer unless it places the link.
    /// A derived text part is the rendered HTML (before its footer) as
    /// text, with the text footer unless the HTML placed the link.
    pub fn render(&self, recipient: &Recipient) -> Result<Rendered, TemplateError> {
        let Recipient {
            name,
            email,
            unsubscribe_url,
        } = *recipient;
        self.render_in(&context! { name, email, unsubscribe_url }, Some(unsubscribe_url))
    }

    /// Renders every part in `context`; with `unsubscribe_url`, a part
    /// that does not place the link ends with its footer (a campaign's),
    /// without, none does (a message's, [`message`]).
    pub(crate) fn render_in(
        &self,
        context: &Value,
        unsubscribe_url: Option<&str>,
    ) -> Result<Rendered, TemplateError> {
        let footer_of = |places_link: bool| unsubscribe_url.filter(|_| !places_link);
        let subject = self.render_part(Part::Subject, context)?;
        let Some(html_places_link) = self.html else {
            let mut body = self.render_part(Part::Body, context)?;
            if let Some(url) = footer_of(self.body_places_link) {
                body.push_str(&footer(url));
            }
            return Ok(Rendered {
                subject,
                body,
                html: None,
            });
        };
        let html = self.render_part(Part::Html, context)?;
        let mut body = if self.derives_text {
            let text = html::to_text(&html);
            if text.len() > MAX_BODY_BYTES {
                return Err(TemplateError::TooLarge(Part::Body, MAX_BODY_BYTES));
            }
            text
        } else {
            self.render_part(Part::Body, context)?
        };
        let text_places_link = if self.derives_text {
            html_places_link
        } else {
            self.body_places_link
        };
        if let Some(url) = footer_of(text_places_link) {
            body.push_str(&footer(url));
        }
        let html = match footer_of(html_places_link) {
            Some(url) => html::with_footer(&html, url),
            None => html,
        };
        Ok(Rendered {
            subject,
            body,
            html: Some(html),
        })
    }

    fn render_part(&self, part: Part, context: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(part.name())
            .map_err(|error| TemplateError::Render(part, detail(&error)))?;
        let mut out = Bounded::new(part.max_bytes());
        let rendered = template.render_captured_to(context, &mut out);
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

#[cfg(test)]
mod tests;
