//! Audience filters: the language a campaign names its audience in, such as
//! `country = 'DE' and plan in ('pro', 'team') and signed_up_at >
//! '2025-01-01' and 'beta' in tags`.
//!
//! It lives in contracts, free of any database crate, because two services
//! need it: campaign-service checks a filter at its door (a typo is a 400
//! when the campaign is created, not a failure deep in the expansion), and
//! user-service, which owns the users, turns it into SQL. [`Filter::parse`]
//! makes the syntax tree; [`Filter::to_sql`] makes a `WHERE` fragment on
//! the `users` table and the values to bind to it: user text only ever
//! travels as a bound parameter, never inside the SQL.
//!
//! The logic has two values: a comparison with a missing (NULL) attribute
//! is false, and `!=`, `not in` and `not` are its exact negations, so
//! `country != 'DE'` holds for a user whose country is unknown, just as
//! `not country = 'DE'` does. SQL's third value never leaks out.
//!
//! Bounds ([`MAX_LENGTH`], [`MAX_DEPTH`], [`MAX_CONDITIONS`]) keep a filter's
//! parsing, its SQL and the database's plan small whatever a client sends.

use std::fmt;

/// The longest filter, in characters.
pub const MAX_LENGTH: usize = 2_000;
/// The deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;
/// The most conditions (comparisons, `in`, `is null`, tag tests) in one
/// filter.
pub const MAX_CONDITIONS: usize = 100;

/// Why a filter is not one: what was wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {offset}")]
pub struct FilterError {
    /// The character offset (from 0) where the problem is.
    pub offset: usize,
    /// What is wrong there, e.g. "unknown attribute 'contry'".
    pub message: String,
}

impl FilterError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }
}

/// An attribute of a user that a filter can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// The user's id (compared as an integer).
    Id,
    /// The address.
    Email,
    /// The full name.
    Name,
    /// ISO 3166 alpha-2 country, e.g. `DE`.
    Country,
    /// Locale, e.g. `de-DE`.
    Locale,
    /// Plan, e.g. `pro`.
    Plan,
    /// When the user signed up (compared as a time: literals are RFC 3339
    /// dates or date-times).
    SignedUpAt,
}

impl Attribute {
    /// Every attribute, in the order error messages list them.
    pub const ALL: [Attribute; 7] = [
        Attribute::Id,
        Attribute::Email,
        Attribute::Name,
        Attribute::Country,
        Attribute::Locale,
        Attribute::Plan,
        Attribute::SignedUpAt,
    ];

    /// Its name in a filter, which is also its column in `users`.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Id => "id",
            Attribute::Email => "email",
            Attribute::Name => "name",
            Attribute::Country => "country",
            Attribute::Locale => "locale",
            Attribute::Plan => "plan",
            Attribute::SignedUpAt => "signed_up_at",
        }
    }

    /// Whether its column may be NULL (the optional attributes).
    fn nullable(self) -> bool {
        !matches!(self, Attribute::Id | Attribute::Email | Attribute::Name)
    }

    /// The attribute named `name` (any case).
    fn named(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|attribute| attribute.name().eq_ignore_ascii_case(name))
    }

    /// The value `text`, a literal at `offset`, has when compared with this
    /// attribute: an integer for `id`, milliseconds since the epoch for
    /// `signed_up_at`, the text itself otherwise.
    fn value(self, text: &str, offset: usize) -> Result<Param, FilterError> {
        match self {
            Attribute::Id => text
                .parse()
                .map(Param::Integer)
                .map_err(|_| FilterError::new(offset, format!("id must be an integer, not '{text}'"))),
            Attribute::SignedUpAt => parse_time_ms(text).map(Param::Integer).ok_or_else(|| {
                FilterError::new(
                    offset,
                    format!("signed_up_at needs an RFC 3339 date or date-time, not '{text}'"),
                )
            }),
            _ => Ok(Param::Text(text.to_string())),
        }
    }
}

/// `text` as milliseconds since the Unix epoch, if it is an RFC 3339
/// date-time (`2025-01-01T12:00:00Z`, any offset) or a full date
/// (`2025-01-01`, its midnight in UTC). How `signed_up_at` is stored, so
/// that it compares the same on every database.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let at = if text.len() == 10 {
        time::OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339)
    } else {
        time::OffsetDateTime::parse(text, &Rfc3339)
    };
    i64::try_from(at.ok()?.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Milliseconds since the Unix epoch as an RFC 3339 date-time in UTC, as
/// `signed_up_at` is shown.
pub fn format_time_ms(ms: i64) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// A value bound to a placeholder of the SQL: the only way a filter's
/// literals reach the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A text value.
    Text(String),
    /// An integer value (ids, times in milliseconds).
    Integer(i64),
}

/// How a comparison compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `=`
    Eq,
    /// `!=` (or `<>`): the negation of `=`, true where the attribute is
    /// missing.
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Comparison {
    fn sql(self) -> &'static str {
        match self {
            Comparison::Eq | Comparison::Ne => "=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }
}

/// A parsed filter: the syntax tree of the language (see the module's
/// documentation and [`Filter::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `attribute <op> 'literal'`.
    Compare {
        /// What is compared.
        attribute: Attribute,
        /// How.
        comparison: Comparison,
        /// With what (typed for the attribute).
        value: Param,
    },
    /// `attribute [not] in ('a', 'b', …)`.
    In {
        /// What is looked for.
        attribute: Attribute,
        /// Among what (at least one).
        values: Vec<Param>,
        /// `not in`: true where the attribute is missing.
        negated: bool,
    },
    /// `'tag' [not] in tags`.
    Tag {
        /// The tag.
        tag: String,
        /// `not in`.
        negated: bool,
    },
    /// `attribute is [not] null`.
    Null {
        /// What is tested.
        attribute: Attribute,
        /// `is not null`.
        negated: bool,
    },
    /// Every one holds (two or more).
    And(Vec<Filter>),
    /// Some one holds (two or more).
    Or(Vec<Filter>),
    /// It does not hold.
    Not(Box<Filter>),
}

/// A filter as SQL: a `WHERE` fragment on the `users` table (columns
/// qualified as `users.<column>`, tags tested with `EXISTS` on
/// `user_tags`), and the values of its placeholders in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    /// The fragment, with `$n` placeholders numbered from the start given.
    pub clause: String,
    /// The value of each placeholder, the first for the start's.
    pub params: Vec<Param>,
}

impl Filter {
    /// Parses `text` (grammar in the module's documentation and in the
    /// README); an error says what is wrong and at which character.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let length = text.chars().count();
        if length > MAX_LENGTH {
            return Err(FilterError::new(
                MAX_LENGTH,
                format!("a filter is at most {MAX_LENGTH} characters, this one is {length}"),
            ));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            end: length,
            depth: 0,
            conditions: 0,
        };
        let filter = parser.or()?;
        match parser.peek() {
            None => Ok(filter),
            Some(token) => Err(FilterError::new(
                token.offset,
                format!("expected 'and', 'or' or the end, found {}", token.kind),
            )),
        }
    }

    /// The filter as a `WHERE` fragment on `users` whose placeholders are
    /// numbered from `$first` (so that it can follow a query's own
    /// parameters), and their values.
    pub fn to_sql(&self, first: usize) -> Sql {
        let mut sql = Sql {
            clause: String::new(),
            params: Vec::new(),
        };
        self.write_sql(first, &mut sql);
        sql
    }

    fn write_sql(&self, first: usize, sql: &mut Sql) {
        let bind = |sql: &mut Sql, value: Param| {
            sql.params.push(value);
            format!("${}", first + sql.params.len() - 1)
        };
        // A test of a column that may be NULL is false there (two-valued
        // logic); its negation is then true there.
        let guarded = |attribute: Attribute, test: String, negated: bool| {
            let test = if attribute.nullable() {
                format!("(users.{} IS NOT NULL AND {test})", attribute.name())
            } else {
                format!("({test})")
            };
            if negated {
                format!("(NOT {test})")
            } else {
                test
            }
        };
        let leaf = match self {
            Filter::Compare {
                attribute,
                comparison,
                value,
            } => {
                let placeholder = bind(sql, value.clone());
                let test = format!("users.{} {} {placeholder}", attribute.name(), comparison.sql());
                guarded(*attribute, test, *comparison == Comparison::Ne)
            }
            Filter::In {
                attribute,
                values,
                negated,
            } => {
                let list: Vec<String> = values.iter().map(|value| bind(sql, value.clone())).collect();
                let test = format!("users.{} IN ({})", attribute.name(), list.join(", "));
                guarded(*attribute, test, *negated)
            }
            Filter::Tag { tag, negated } => {
                let placeholder = bind(sql, Param::Text(tag.clone()));
                format!(
                    "({}EXISTS (SELECT 1 FROM user_tags WHERE user_tags.user_id = users.id AND user_tags.tag = {placeholder}))",
                    if *negated { "NOT " } else { "" }
                )
            }
            Filter::Null { attribute, negated } => format!(
                "(users.{} IS {}NULL)",
                attribute.name(),
                if *negated { "NOT " } else { "" }
            ),
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => String::new(),
        };
        sql.clause.push_str(&leaf);
        match self {
            Filter::And(all) | Filter::Or(all) => {
                let joint = if matches!(self, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.clause.push('(');
                for (n, filter) in all.iter().enumerate() {
                    if n > 0 {
                        sql.clause.push_str(joint);
                    }
                    filter.write_sql(first, sql);
                }
                sql.clause.push(')');
            }
            Filter::Not(filter) => {
                sql.clause.push_str("(NOT ");
                filter.write_sql(first, sql);
                sql.clause.push(')');
            }
            _ => {}
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A word: a keyword or an attribute.
    Word(String),
    /// A quoted literal, unquoted.
    Literal(String),
    /// `(`
    Open,
    /// `)`
    Close,
    /// `,`
    Comma,
    /// A comparison operator.
    Operator(Comparison),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(word) => write!(f, "'{word}'"),
            Kind::Literal(_) => f.write_str("a literal"),
            Kind::Open => f.write_str("'('"),
            Kind::Close => f.write_str("')'"),
            Kind::Comma => f.write_str("','"),
            Kind::Operator(comparison) => f.write_str(match comparison {
                Comparison::Eq => "'='",
                Comparison::Ne => "'!='",
                Comparison::Lt => "'<'",
                Comparison::Le => "'<='",
                Comparison::Gt => "'>'",
                Comparison::Ge => "'>='",
            }),
        }
    }
}

/// A token and the character offset it starts at.
#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    offset: usize,
}

/// The tokens of `text`.
fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let offset = at;
        let c = chars[at];
        let kind = match c {
            c if c.is_whitespace() => {
                at += 1;
                continue;
            }
            '(' => Kind::Open,
            ')' => Kind::Close,
            ',' => Kind::Comma,
            '=' => Kind::Operator(Comparison::Eq),
            '!' if chars.get(at + 1) == Some(&'=') => {
                at += 1;
                Kind::Operator(Comparison::Ne)
            }
            '<' | '>' => {
                let next = chars.get(at + 1).copied();
                let (comparison, long) = match (c, next) {
                    ('<', Some('=')) => (Comparison::Le, true),
                    ('<', Some('>')) => (Comparison::Ne, true),
                    ('<', _) => (Comparison::Lt, false),
                    (_, Some('=')) => (Comparison::Ge, true),
                    _ => (Comparison::Gt, false),
                };
                if long {
                    at += 1;
                }
                Kind::Operator(comparison)
            }
            '\'' => {
                let mut literal = String::new();
                at += 1;
                loop {
                    match chars.get(at) {
                        None => return Err(FilterError::new(offset, "unterminated literal")),
                        Some('\'') if chars.get(at + 1) == Some(&'\'') => {
                            literal.push('\'');
                            at += 2;
                        }
                        Some('\'') => break,
                        Some(c) => {
                            literal.push(*c);
                            at += 1;
                        }
                    }
                }
                Kind::Literal(literal)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = at;
                while chars
                    .get(at + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                {
                    at += 1;
                }
                Kind::Word(chars[start..=at].iter().collect())
            }
            c => {
                let shown: String = c.escape_default().collect();
                return Err(FilterError::new(
                    offset,
                    format!("unexpected character '{shown}'"),
                ));
            }
        };
        tokens.push(Token { kind, offset });
        at += 1;
    }
    Ok(tokens)
}

/// A recursive-descent parser over the tokens, counting depth and
/// conditions as it goes.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The length of the text: where "the end" is.
    end: usize,
    depth: usize,
    conditions: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// Where the next token starts (the end of the text if none).
    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |token| token.offset)
    }

    /// Whether the next token is the keyword `word`; takes it if so.
    fn keyword(&mut self, word: &str) -> bool {
        let found =
            matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case(word));
        if found {
            self.at += 1;
        }
        found
    }

    /// Takes the next token if it is `kind`; else an error expecting
    /// `what`.
    fn expect(&mut self, kind: &Kind, what: &str) -> Result<(), FilterError> {
        if self.peek().is_some_and(|token| token.kind == *kind) {
            self.at += 1;
            Ok(())
        } else {
            Err(FilterError::new(self.offset(), format!("expected {what}")))
        }
    }

    fn deeper(&mut self, offset: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(
                offset,
                format!("a filter nests at most {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn condition_counted(&mut self, offset: usize) -> Result<(), FilterError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(FilterError::new(
                offset,
                format!("a filter holds at most {MAX_CONDITIONS} conditions"),
            ));
        }
        Ok(())
    }

    /// `or_expr = and_expr { "or" and_expr }`
    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut all = vec![self.and()?];
        while self.keyword("or") {
            all.push(self.and()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Filter::Or(all)
        })
    }

    /// `and_expr = unary { "and" unary }`
    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut all = vec![self.unary()?];
        while self.keyword("and") {
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Filter::And(all)
        })
    }

    /// `unary = "not" unary | "(" or_expr ")" | condition`
    fn unary(&mut self) -> Result<Filter, FilterError> {
        let offset = self.offset();
        if self.keyword("not") {
            self.deeper(offset)?;
            let filter = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(filter)));
        }
        if self.peek().is_some_and(|token| token.kind == Kind::Open) {
            self.at += 1;
            self.deeper(offset)?;
            let filter = self.or()?;
            self.expect(&Kind::Close, "')'")?;
            self.depth -= 1;
            return Ok(filter);
        }
        self.condition()
    }

    /// `condition = literal ["not"] "in" "tags" | attribute test`
    fn condition(&mut self) -> Result<Filter, FilterError> {
        let offset = self.offset();
        let Some(token) = self.peek().cloned() else {
            return Err(FilterError::new(offset, "expected a condition"));
        };
        match token.kind {
            Kind::Literal(tag) => {
                self.at += 1;
                let negated = self.keyword("not");
                if !self.keyword("in") {
                    return Err(FilterError::new(
                        self.offset(),
                        format!(
                            "expected {}'in tags' after a literal",
                            if negated { "" } else { "'not in tags' or " }
                        ),
                    ));
                }
                if !self.keyword("tags") {
                    return Err(FilterError::new(self.offset(), "expected 'tags'"));
                }
                self.condition_counted(offset)?;
                Ok(Filter::Tag { tag, negated })
            }
            Kind::Word(word) => {
                if word.eq_ignore_ascii_case("tags") {
                    return Err(FilterError::new(
                        offset,
                        "tags are tested as 'tag' in tags or 'tag' not in tags",
                    ));
                }
                let Some(attribute) = Attribute::named(&word) else {
                    let known: Vec<&str> = Attribute::ALL.iter().map(|a| a.name()).collect();
                    return Err(FilterError::new(
                        offset,
                        format!(
                            "unknown attribute '{word}' (the attributes are {}, and 'tag' in tags)",
                            known.join(", ")
                        ),
                    ));
                };
                self.at += 1;
                self.condition_counted(offset)?;
                self.test(attribute)
            }
            kind => Err(FilterError::new(
                offset,
                format!("expected an attribute, a literal or '(', found {kind}"),
            )),
        }
    }

    /// What follows an attribute: `op literal`, `[not] in (literal, …)`,
    /// `is [not] null`.
    fn test(&mut self, attribute: Attribute) -> Result<Filter, FilterError> {
        if let Some(Token {
            kind: Kind::Operator(comparison),
            ..
        }) = self.peek().cloned()
        {
            self.at += 1;
            let value = self.literal(attribute)?;
            return Ok(Filter::Compare {
                attribute,
                comparison,
                value,
            });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err(FilterError::new(self.offset(), "expected 'null'"));
            }
            return Ok(Filter::Null { attribute, negated });
        }
        let negated = self.keyword("not");
        if !self.keyword("in") {
            return Err(FilterError::new(
                self.offset(),
                if negated {
                    "expected 'in'"
                } else {
                    "expected a comparison ('=', '!=', '<', '<=', '>', '>='), 'in', 'not in' or 'is'"
                },
            ));
        }
        self.expect(&Kind::Open, "'('")?;
        let mut values = vec![self.literal(attribute)?];
        while self.peek().is_some_and(|token| token.kind == Kind::Comma) {
            self.at += 1;
            values.push(self.literal(attribute)?);
        }
        self.expect(&Kind::Close, "')'")?;
        Ok(Filter::In {
            attribute,
            values,
            negated,
        })
    }

    /// A literal, typed for `attribute`.
    fn literal(&mut self, attribute: Attribute) -> Result<Param, FilterError> {
        match self.peek().cloned() {
            Some(Token {
                kind: Kind::Literal(text),
                offset,
            }) => {
                self.at += 1;
                attribute.value(&text, offset)
            }
            _ => Err(FilterError::new(
                self.offset(),
                "expected a literal in single quotes",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
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
            ("attributes.team = 'x'", 0, "unknown attribute 'attributes.team'"),
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
        .to_sql(3);
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
                    let sql = filter.to_sql(1);
                    prop_assert_eq!(sql.clause.matches('$').count(), sql.params.len());
                }
                Err(error) => prop_assert!(error.offset <= text.chars().count()),
            }
        }
    }
}
