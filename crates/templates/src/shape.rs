//! What a template may be made of, so a render's memory stays bounded.
//!
//! Fuel bounds the instructions a render runs and [`crate::Bounded`] the
//! bytes it writes, but one instruction can build a value of any size
//! without writing it: `{% set a = "x" * 100000000 %}{% set a = a ~ a %}…`
//! doubles a string per statement. So templates may test, loop, filter and
//! write values, never build them: statements other than `if` and `for`
//! (`set`, `macro`, `call`, `with`, …) and the operators that join or repeat
//! values (`+`, `*`, `~`) are refused; the filters are a few whose output
//! is at most a few times their input (see [`environment`]), and there are
//! no global functions (`range`, `namespace`, …). Every value a render holds
//! is then at most a small multiple of the source and the recipient.
//!
//! minijinja offers its lexer only as unstable machinery; the lock file pins
//! the version, and an upgrade that changes the lexer's tokens fails to
//! compile rather than letting templates through.

use minijinja::machinery::{tokenize, Token, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::{filters, tests, Environment};

/// The statements a template may use: conditions and loops.
const STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor"];

/// The first construct of `source` that templates may not use, named for
/// the refusal; `None` when there is none. A source that does not tokenize
/// is left to the parser, which names the syntax error.
pub fn refused(source: &str) -> Option<String> {
    let mut statement_start = false;
    for item in tokenize(source, false, SyntaxConfig, WhitespaceConfig::default()) {
        let Ok((token, _)) = item else {
            return None;
        };
        if statement_start {
            statement_start = false;
            match token {
                Token::Ident(name) if STATEMENTS.contains(&name) => {}
                Token::Ident(name) => return Some(format!("`{name}` statements")),
                other => return Some(format!("`{other}` statements")),
            }
        }
        match token {
            Token::BlockStart => statement_start = true,
            Token::Plus => return Some("the `+` operator".into()),
            Token::Mul => return Some("the `*` operator".into()),
            Token::Tilde => return Some("the `~` operator".into()),
            _ => {}
        }
    }
    None
}

/// An environment with only the filters below, each at most a few times
/// its input, the tests (they only answer yes or no) and no globals.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::empty();
    env.add_filter("abs", filters::abs);
    env.add_filter("capitalize", filters::capitalize);
    env.add_filter("default", filters::default);
    env.add_filter("d", filters::default);
    env.add_filter("first", filters::first);
    env.add_filter("float", filters::float);
    env.add_filter("int", filters::int);
    env.add_filter("last", filters::last);
    env.add_filter("length", filters::length);
    env.add_filter("count", filters::length);
    env.add_filter("lower", filters::lower);
    env.add_filter("reverse", filters::reverse);
    env.add_filter("round", filters::round);
    env.add_filter("split", filters::split);
    env.add_filter("title", filters::title);
    env.add_filter("trim", filters::trim);
    env.add_filter("upper", filters::upper);
    env.add_test("defined", tests::is_defined);
    env.add_test("undefined", tests::is_undefined);
    env.add_test("none", tests::is_none);
    env.add_test("number", tests::is_number);
    env.add_test("string", tests::is_string);
    env.add_test("odd", tests::is_odd);
    env.add_test("even", tests::is_even);
    env.add_test("startingwith", tests::is_startingwith);
    env.add_test("endingwith", tests::is_endingwith);
    env.add_test("lower", tests::is_lower);
    env.add_test("upper", tests::is_upper);
    env.add_test("in", tests::is_in);
    env
}
