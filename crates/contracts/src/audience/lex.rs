//! The tokens of a filter: words, quoted literals, operators and
//! punctuation, each with the character offset its errors name.

use std::fmt;

use super::{Comparison, FilterError};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) offset: usize,
}

/// The tokens of `text`.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
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
