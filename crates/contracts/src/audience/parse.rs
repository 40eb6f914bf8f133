//! The parser: recursive descent over the tokens ([`super::lex`]), one
//! function per rule of the grammar (in the module's documentation),
//! counting depth and conditions against their bounds as it goes.

use super::lex::{tokenize, Kind, Token};
use super::{Attribute, Filter, FilterError, Param, MAX_CONDITIONS, MAX_DEPTH, MAX_LENGTH};

/// The filter `text` is, or the first thing wrong with it and where.
pub(super) fn parse(text: &str) -> Result<Filter, FilterError> {
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
                let attribute =
                    Attribute::named(&word).map_err(|message| FilterError::new(offset, message))?;
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
            let value = self.literal(&attribute)?;
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
        let mut values = vec![self.literal(&attribute)?];
        while self.peek().is_some_and(|token| token.kind == Kind::Comma) {
            self.at += 1;
            values.push(self.literal(&attribute)?);
        }
        self.expect(&Kind::Close, "')'")?;
        Ok(Filter::In {
            attribute,
            values,
            negated,
        })
    }

    /// A literal, typed for `attribute`.
    fn literal(&mut self, attribute: &Attribute) -> Result<Param, FilterError> {
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
