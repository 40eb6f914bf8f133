//! The templates' checks and bounds, part by part.

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
            html: None,
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
            html: None,
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

fn with_html<'a>(body: &'a str, html: &'a str) -> Sources<'a> {
    Sources {
        subject: "Hi {{ name }}",
        body,
        html: Some(html),
    }
}

#[test]
fn the_html_body_escapes_the_recipient_and_the_text_does_not() {
    let sources = with_html(
        "Dear {{ name }}",
        r#"<p>Dear {{ name }} ({{ email }}) <a href="{{ unsubscribe_url }}">leave</a></p>"#,
    );
    Templates::check_sources(&sources).unwrap();
    let rendered = Templates::compile_sources(&sources)
        .unwrap()
        .render(&recipient(r#"<b>&""#, "a'b@example.com"))
        .unwrap();
    assert_eq!(rendered.subject, r#"Hi <b>&""#, "the subject is not HTML");
    assert_eq!(rendered.body, format!("Dear <b>&\"{}", footer(LINK)));
    assert_eq!(
        rendered.html.unwrap(),
        "<p>Dear &lt;b&gt;&amp;&quot; (a&#x27;b@example.com) \
         <a href=\"https:&#x2f;&#x2f;mail.example.com&#x2f;unsubscribe&#x2f;t0k3n\">leave</a></p>",
        "the HTML places the link: no footer"
    );
}

#[test]
fn an_empty_text_body_is_derived_from_the_rendered_html() {
    let sources = with_html(
        "",
        "<h1>Hello {{ name }}</h1><p>News &amp; more: <a href=\"https://x.example/n\">read</a></p>",
    );
    assert!(sources.derives_text());
    Templates::check_sources(&sources).unwrap();
    let rendered = Templates::compile_sources(&sources)
        .unwrap()
        .render(&recipient("<b>&\"", "ada@example.com"))
        .unwrap();
    assert_eq!(
        rendered.body,
        format!(
            "Hello <b>&\"\n\nNews & more: read (https://x.example/n)\n{}",
            footer(LINK)
        )
    );
    let html = rendered.html.unwrap();
    assert!(html.starts_with("<h1>Hello &lt;b&gt;&amp;&quot;</h1>"), "{html}");
    assert!(
        html.ends_with(&html::footer(LINK)),
        "the HTML lacks the link: it gets the footer: {html}"
    );
    let placed = with_html("", "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>");
    let rendered = Templates::compile_sources(&placed)
        .unwrap()
        .render(&recipient("Ada", "ada@example.com"))
        .unwrap();
    assert_eq!(rendered.body, format!("Unsubscribe ({LINK})\n"));
}

#[test]
fn the_html_body_has_the_checks_and_bounds_of_the_text_one() {
    assert!(matches!(
        Templates::check_sources(&with_html("b", "<p>{{ nope }}</p>")),
        Err(TemplateError::Undefined(Part::Html, _))
    ));
    assert!(matches!(
        Templates::check_sources(&with_html("b", "<p>{{ name </p>")),
        Err(TemplateError::Syntax(Part::Html, _))
    ));
    assert_eq!(
        Templates::check_sources(&with_html("b", "{% set a = 1 %}")),
        Err(TemplateError::Refused(Part::Html, "`set` statements".into()))
    );
    assert!(
        matches!(
            Templates::check_sources(&with_html("b", "{{ name|safe }}")),
            Err(TemplateError::Render(Part::Html, _))
        ),
        "escaping cannot be turned off"
    );
    let large = format!("{{% for i in [1, 2, 3] %}}{}{{% endfor %}}", "x".repeat(100_000));
    assert_eq!(
        Templates::check_sources(&with_html("", &large)),
        Err(TemplateError::TooLarge(Part::Html, MAX_BODY_BYTES))
    );
    let chars = "x".repeat(300);
    let nested =
        format!("{{% for i in \"{chars}\" %}}{{% for j in \"{chars}\" %}}{{% endfor %}}{{% endfor %}}");
    assert_eq!(
        Templates::check_sources(&with_html("b", &nested)),
        Err(TemplateError::TooCostly(Part::Html))
    );
}
