//! The filter language's tables of good and bad filters, its bounds, its
//! SQL, and arbitrary text that must never make it panic.

use super::*;
use proptest::prelude::*;

fn error(text: &str) -> (usize, String) {
    let error = Filter::parse(text).unwrap_err();
    (error.offset, error.to_string())
}

#[test]
fn the_example_parses_into_its_tree() {
    let filter = Filter::parse(
        "country = 'DE' and plan in ('pro', 'team') and signed_up_at > '2025-01-01' and 'beta' in tags",
    )
    .unwrap();
    assert_eq!(
        filter,
        Filter::And(vec![
            Filter::Compare {
                attribute: Attribute::Country,
                comparison: Comparison::Eq,
                value: Param::Text("DE".into()),
            },
            Filter::In {
                attribute: Attribute::Plan,
                values: vec![Param::Text("pro".into()), Param::Text("team".into())],
                negated: false,
            },
            Filter::Compare {
                attribute: Attribute::SignedUpAt,
                comparison: Comparison::Gt,
                value: Param::Integer(1_735_689_600_000),
            },
            Filter::Tag {
                tag: "beta".into(),
                negated: false,
            },
        ])
    );
}

#[test]
fn valid_filters_parse() {
    for text in [
        "country = 'DE'",
        "COUNTRY = 'DE' AND Plan != 'free'",
        "country <> 'DE'",
        "plan not in ('free')",
        "'vip' not in tags",
        "'beta' IN TAGS or 'vip' in tags",
        "locale is null",
        "locale IS NOT NULL",
        "not (country = 'DE' or country = 'AT')",
        "not not plan = 'pro'",
        "((((plan = 'pro'))))",
        "name = 'O''Brien'",
        "name = ''",
        "id >= '10' and id < '20'",
        "email = 'ada@example.com'",
        "signed_up_at <= '2025-06-30T12:00:00Z'",
        "signed_up_at >= '2024-02-29T23:59:59.5+02:00'",
        "  country='DE'and plan='pro'  ",
        "name = 'Zoë'",
    ] {
        assert!(Filter::parse(text).is_ok(), "{text}: {:?}", Filter::parse(text));
    }
}

#[test]
fn invalid_filters_say_what_and_where() {
    for (text, offset, message) in [
        ("contry = 'DE'", 0, "unknown attribute 'contry'"),
        (
            "country = 'DE' and plan in ('pro', 'team'",
            41,
            "expected ')' at 41",
        ),
        ("", 0, "expected a condition at 0"),
        ("   ", 3, "expected a condition at 3"),
        ("country = ", 10, "expected a literal in single quotes at 10"),
        ("country = DE", 10, "expected a literal in single quotes at 10"),
        ("country = 'DE", 10, "unterminated literal at 10"),
        ("country == 'DE'", 9, "expected a literal in single quotes at 9"),
        (
            "country = 'DE' plan = 'pro'",
            15,
            "expected 'and', 'or' or the end, found 'plan' at 15",
        ),
        ("country = 'DE' and", 18, "expected a condition at 18"),
        ("country", 7, "expected a comparison"),
        ("country is 'DE'", 11, "expected 'null' at 11"),
        ("country not 'DE'", 12, "expected 'in' at 12"),
        ("plan in ()", 9, "expected a literal in single quotes at 9"),
        ("plan in 'pro'", 8, "expected '(' at 8"),
        ("'beta' in plan", 10, "expected 'tags' at 10"),
        ("'beta' = tags", 7, "expected 'not in tags' or 'in tags'"),
        ("tags = 'beta'", 0, "tags are tested as"),
        (
            "signed_up_at > '2025-13-01'",
            15,
            "signed_up_at needs an RFC 3339 date or date-time, not '2025-13-01' at 15",
        ),
        ("signed_up_at > 'yesterday'", 15, "RFC 3339"),
        ("signed_up_at > '2025-01-01 12:00'", 15, "RFC 3339"),
        ("id = 'one'", 5, "id must be an integer, not 'one' at 5"),
        ("country = 'DE' # comment", 15, "unexpected character '#' at 15"),
        ("(country = 'DE'", 15, "expected ')' at 15"),
        (
            "country = 'DE')",
            14,
            "expected 'and', 'or' or the end, found ')' at 14",
        ),
        ("attribute.team = 'x'", 0, "unknown attribute 'attribute.team'"),
        (
            "plan = 'pro' and attributes.9lives = 'x'",
            17,
            "'attributes.9lives' is not a free-form attribute",
        ),
        ("attributes. = 'x'", 0, "is not a free-form attribute"),
        ("= 'DE'", 0, "expected an attribute, a literal or '(', found '='"),
        ("'Zoë' in tags or ~", 17, "unexpected character '~' at 17"),
    ] {
        let (at, said) = error(text);
        assert_eq!(at, offset, "{text}: {said}");
        assert!(said.contains(message), "{text}: {said}");
    }
}

#[test]
fn the_bounds_hold() {
    let long = format!("name = '{}'", "a".repeat(MAX_LENGTH));
    assert_eq!(error(&long).0, MAX_LENGTH);
    let deep = format!("{}plan = 'pro'{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Filter::parse(&deep).is_ok());
    let deeper = format!(
        "{}plan = 'pro'{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(
        error(&deeper),
        (
            MAX_DEPTH,
            format!("a filter nests at most {MAX_DEPTH} deep at {MAX_DEPTH}")
        )
    );
    let nots = format!("{}plan = 'pro'", "not ".repeat(MAX_DEPTH + 1));
    assert!(error(&nots).1.contains("nests at most"));
    let many = vec!["plan = 'pro'"; MAX_CONDITIONS].join(" or ");
    assert!(Filter::parse(&many).is_ok());
    let too_many = format!("{many} or plan = 'x'");
    let (at, said) = error(&too_many);
    assert_eq!(at, too_many.len() - "plan = 'x'".len());
    assert!(said.contains("at most 100 conditions"), "{said}");
}

#[test]
fn sql_binds_every_literal_and_numbers_from_the_start() {
    let sql = Filter::parse(
        "country = 'DE' and plan in ('pro', 'te''am') and signed_up_at > '2025-01-01' and 'beta' not in tags or not id != '7' or locale is null",
    )
    .unwrap()
    .to_sql(3, Dialect::Sqlite);
    assert_eq!(
        sql.clause,
        "(((users.country IS NOT NULL AND users.country = $3) AND (users.plan IS NOT NULL AND users.plan IN ($4, $5)) \
         AND (users.signed_up_at IS NOT NULL AND users.signed_up_at > $6) \
         AND (NOT EXISTS (SELECT 1 FROM user_tags WHERE user_tags.user_id = users.id AND user_tags.tag = $7))) \
         OR (NOT (NOT (users.id = $8))) OR (users.locale IS NULL))"
    );
    assert_eq!(
        sql.params,
        [
            Param::Text("DE".into()),
            Param::Text("pro".into()),
            Param::Text("te'am".into()),
            Param::Integer(1_735_689_600_000),
            Param::Text("beta".into()),
            Param::Integer(7),
        ]
    );
    assert!(!sql.clause.contains("te'am") && !sql.clause.contains("DE"));
}

#[test]
fn a_free_form_attribute_is_its_json_value_s_text_with_its_key_bound_too() {
    let filter = Filter::parse("attributes.Team = 'ops' or attributes.seats not in ('1', '2')").unwrap();
    let sqlite = filter.to_sql(1, Dialect::Sqlite);
    assert_eq!(
        sqlite.clause,
        "((CAST(json_extract(users.attributes, $1) AS TEXT) IS NOT NULL AND CAST(json_extract(users.attributes, $1) AS TEXT) = $2) \
         OR (NOT (CAST(json_extract(users.attributes, $3) AS TEXT) IS NOT NULL AND CAST(json_extract(users.attributes, $3) AS TEXT) IN ($4, $5))))"
    );
    assert_eq!(sqlite.params[0], Param::Text("$.\"Team\"".into()));
    let postgres = filter.to_sql(1, Dialect::Postgres);
    assert_eq!(
        postgres.clause,
        "(((users.attributes::jsonb ->> $1) IS NOT NULL AND (users.attributes::jsonb ->> $1) = $2) \
         OR (NOT ((users.attributes::jsonb ->> $3) IS NOT NULL AND (users.attributes::jsonb ->> $3) IN ($4, $5))))"
    );
    assert_eq!(
        postgres.params,
        ["Team", "ops", "seats", "1", "2"].map(|text| Param::Text(text.into()))
    );
    let missing = Filter::parse("attributes.team is null")
        .unwrap()
        .to_sql(1, Dialect::Postgres);
    assert_eq!(missing.clause, "((users.attributes::jsonb ->> $1) IS NULL)");
}

/// The placeholders of `sql`'s clause, in order of first use: `$1`, `$2`…
/// once each, one per parameter.
fn placeholders_in_order(sql: &Sql, first: usize) -> bool {
    let mut seen: Vec<usize> = Vec::new();
    for part in sql.clause.split('$').skip(1) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<usize>() {
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
    }
    seen == (first..first + sql.params.len()).collect::<Vec<_>>()
}

#[test]
fn times_read_and_show_as_rfc_3339() {
    assert_eq!(parse_time_ms("1970-01-01"), Some(0));
    assert_eq!(parse_time_ms("1970-01-01T01:00:00+01:00"), Some(0));
    assert_eq!(parse_time_ms("2025-01-01T00:00:00.250Z"), Some(1_735_689_600_250));
    assert_eq!(parse_time_ms("2025-02-30"), None);
    assert_eq!(
        format_time_ms(1_735_689_600_000).as_deref(),
        Some("2025-01-01T00:00:00Z")
    );
}

proptest! {
    #[test]
    fn any_text_parses_or_fails_without_panicking(text in "\\PC{0,300}") {
        if let Err(error) = Filter::parse(&text) {
            prop_assert!(error.offset <= text.chars().count());
        }
    }

    #[test]
    fn text_made_of_the_language_parses_or_fails_without_panicking(
        words in proptest::collection::vec(
            prop_oneof![
                Just("country"), Just("plan"), Just("signed_up_at"), Just("id"), Just("tags"),
                Just("attributes.team"),
                Just("and"), Just("or"), Just("not"), Just("in"), Just("is"), Just("null"),
                Just("("), Just(")"), Just(","), Just("="), Just("!="), Just("<"), Just(">="),
                Just("'DE'"), Just("'2025-01-01'"), Just("'7'"), Just("'it''s'"), Just("'"),
            ],
            0..60,
        )
    ) {
        let text = words.join(" ");
        match Filter::parse(&text) {
            Ok(filter) => {
                for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                    let sql = filter.to_sql(1, dialect);
                    prop_assert!(placeholders_in_order(&sql, 1), "{:?}", sql);
                }
            }
            Err(error) => prop_assert!(error.offset <= text.chars().count()),
        }
    }
}
