//! Rendering a campaign's templates for one recipient, with minijinja.
//!
//! Templates see `name` and `email`. Undefined variables are errors, not
//! silent blanks, so a typo in a template fails the notification visibly.

use minijinja::{context, Environment, UndefinedBehavior};

/// A rendered subject and body.
#[derive(Debug, PartialEq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Renders `subject` and `body` for a recipient.
pub fn render(subject: &str, body: &str, name: &str, email: &str) -> Result<Rendered, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let ctx = context! { name, email };
    Ok(Rendered {
        subject: env.render_str(subject, &ctx)?,
        body: env.render_str(body, &ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_see_the_recipient() {
        let rendered = render(
            "Hi {{ name }}",
            "Dear {{ name }} <{{ email }}>",
            "Ada",
            "ada@example.com",
        )
        .unwrap();
        assert_eq!(rendered.subject, "Hi Ada");
        assert_eq!(rendered.body, "Dear Ada <ada@example.com>");
    }

    #[test]
    fn an_unknown_variable_is_an_error() {
        assert!(render("Hi {{ nmae }}", "", "Ada", "a@b.c").is_err());
    }
}
