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
//!
//! The grammar (keywords and attribute names in any case; whitespace
//! between tokens is free; `signed_up_at`'s literals are RFC 3339 dates,
//! midnight UTC, or date-times; `id`'s are integers):
//!
//! ```text
//! filter     = or ;
//! or         = and , { "or" , and } ;
//! and        = unary , { "and" , unary } ;
//! unary      = "not" , unary | "(" , or , ")" | condition ;
//! condition  = literal , [ "not" ] , "in" , "tags"
//!            | attribute , comparison , literal
//!            | attribute , [ "not" ] , "in" , "(" , literal , { "," , literal } , ")"
//!            | attribute , "is" , [ "not" ] , "null" ;
//! comparison = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
//! attribute  = "id" | "email" | "name" | "country" | "locale" | "plan" | "signed_up_at"
//!            | "attributes." , key ;
//! key        = letter or "_" , { letter or digit or "_" } ;   (at most 64)
//! literal    = "'" , { any character but "'" | "''" } , "'" ;
//! ```
//!
//! A free-form attribute (`attributes.team`, a key of the user's
//! `attributes` object) is compared as the text of its JSON value: a
//! string as itself, an integer as its digits; a user without the key (or
//! whose value there is `null`) has no value, as for the optional
//! attributes above. Its SQL depends on the database ([`Dialect`]).
//!
//! The module is cut as the work is: `lex` makes tokens, `parse` the
//! tree, `sql` the SQL.

mod lex;
mod parse;
mod sql;
#[cfg(test)]
mod tests;

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

/// The longest key of a free-form attribute (`attributes.<key>`).
pub const MAX_KEY_LENGTH: usize = 64;

/// The database a filter's SQL is for: they read JSON differently (the
/// free-form attributes), and agree on the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `json_extract` on the `attributes` text.
    Sqlite,
    /// PostgreSQL: `->>` on the `attributes` text cast to `jsonb`.
    Postgres,
}

/// An attribute of a user that a filter can test.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A key of the free-form `attributes` object (`attributes.team`),
    /// compared as the text of its value.
    Free(String),
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

    /// Its name in a filter: for a column of `users`, the column's.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Id => "id",
            Attribute::Email => "email",
            Attribute::Name => "name",
            Attribute::Country => "country",
            Attribute::Locale => "locale",
            Attribute::Plan => "plan",
            Attribute::SignedUpAt => "signed_up_at",
            Attribute::Free(key) => key,
        }
    }

    /// Whether it may be missing (all but the id, the address and the
    /// name).
    fn nullable(&self) -> bool {
        !matches!(self, Attribute::Id | Attribute::Email | Attribute::Name)
    }

    /// The attribute named `name` (any case), or the free-form one that
    /// `attributes.<key>` names (its key as written); an error says why a
    /// name is neither.
    fn named(name: &str) -> Result<Self, String> {
        if let Some(key) = name
            .get(..11)
            .filter(|prefix| prefix.eq_ignore_ascii_case("attributes."))
            .map(|_| &name[11..])
        {
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && key.len() <= MAX_KEY_LENGTH;
            return if valid {
                Ok(Attribute::Free(key.to_string()))
            } else {
                Err(format!(
                    "'{name}' is not a free-form attribute: its key is a letter or '_', then letters, digits \
                     or '_', at most {MAX_KEY_LENGTH}"
                ))
            };
        }
        Self::ALL
            .into_iter()
            .find(|attribute| attribute.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(Attribute::name).collect();
                format!(
                    "unknown attribute '{name}' (the attributes are {}, attributes.<key>, and 'tag' in tags)",
                    known.join(", ")
                )
            })
    }

    /// The value `text`, a literal at `offset`, has when compared with this
    /// attribute: an integer for `id`, milliseconds since the epoch for
    /// `signed_up_at`, the text itself otherwise.
    fn value(&self, text: &str, offset: usize) -> Result<Param, FilterError> {
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
    /// Parses `text` (grammar in the module's documentation and in
    /// docs/campaigns.md); an error says what is wrong and at which character.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        parse::parse(text)
    }

    /// The filter as a `WHERE` fragment on `users`, in `dialect`, whose
    /// placeholders are numbered from `$first` (so that it can follow a
    /// query's own parameters), and their values.
    pub fn to_sql(&self, first: usize, dialect: Dialect) -> Sql {
        let mut sql = Sql {
            clause: String::new(),
            params: Vec::new(),
        };
        self.write_sql(first, dialect, &mut sql);
        sql
    }
}
