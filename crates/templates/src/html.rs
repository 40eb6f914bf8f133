//! The HTML body's helpers: its unsubscribe footer, and the text part
//! derived from it when a campaign gives no text template.
//!
//! The text is made by a small converter of our own rather than by a crate
//! such as `html2text`: what it reads is a template's render (our output,
//! bounded by [`crate::MAX_BODY_BYTES`]), not arbitrary web pages, and a
//! mail's text alternative needs only words, paragraphs, list items and
//! where the links go. `html2text` would bring a full HTML5 parser
//! (`html5ever` and its dozen crates) into every service that renders, for
//! a layout (wrapped columns, tables drawn in ASCII) a mail client does
//! not need. The converter:
//! - drops tags, comments, and the content of `head`, `script`, `style`
//!   and `title`;
//! - makes paragraphs of block elements (`p`, `div`, headings, tables,
//!   lists…), a line of `br` and `tr`, a `- ` item of `li`;
//! - keeps a link as `text (url)` (the link alone when its text is the
//!   URL, nothing added for `#anchors`);
//! - decodes entities (named ones mail uses, and every numeric one);
//! - collapses runs of white space to one space, and of blank lines to one.

use std::fmt::Write;

/// What an HTML body that does not place `{{ unsubscribe_url }}` gets
/// before its `</body>` (or at its end): a paragraph with the link. No
/// `style` attribute: the dashboard's preview shows it under a policy
/// that refuses inline styles.
pub fn footer(unsubscribe_url: &str) -> String {
    format!(
        "<p><small>To stop receiving these emails, \
         <a href=\"{}\">unsubscribe</a>.</small></p>",
        escape(unsubscribe_url)
    )
}

/// `html` with [`footer`] before its last `</body>`, or at its end.
pub fn with_footer(html: &str, unsubscribe_url: &str) -> String {
    let footer = footer(unsubscribe_url);
    match html.to_ascii_lowercase().rfind("</body") {
        // The lower-cased copy has the same byte offsets: ASCII case
        // changes keep every character's length.
        Some(at) => format!("{}{footer}{}", &html[..at], &html[at..]),
        None => format!("{html}\n{footer}"),
    }
}

/// `value` escaped for HTML text or a quoted attribute.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Elements whose content is not text to read.
const HIDDEN: &[&str] = &["head", "script", "style", "title"];

/// Elements that stand as paragraphs of their own.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "pre",
    "address",
    "center",
    "body",
    "html",
];

/// `html` as plain text (see the module's documentation for what it keeps).
pub fn to_text(html: &str) -> String {
    let mut text = Text::default();
    let mut rest = html;
    let mut hidden: Option<String> = None;
    // The open links' URLs, innermost last, and where their text began.
    let mut links: Vec<(Option<String>, usize)> = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        if rest.starts_with('<') {
            if let Some((tag, after)) = Tag::parse(rest) {
                rest = after;
                if let Some(name) = &hidden {
                    if tag.closing && tag.name == *name {
                        hidden = None;
                    }
                    continue;
                }
                text.tag(&tag, &mut links, &mut hidden);
                continue;
            }
        }
        // `<` is one byte: past a lone one, the next may start a tag.
        let from = usize::from(rest.starts_with('<'));
        let end = rest[from..].find('<').map_or(rest.len(), |at| at + from);
        if hidden.is_none() {
            text.words(&decode(&rest[..end]));
        }
        rest = &rest[end..];
    }
    text.finish()
}

/// The text being written, white space collapsed as it comes.
#[derive(Default)]
struct Text {
    out: String,
    /// Line breaks owed before the next word (0, 1 or 2).
    breaks: usize,
    /// A space owed before the next word.
    space: bool,
}

impl Text {
    fn words(&mut self, words: &str) {
        for (i, word) in words.split(|c: char| c.is_whitespace()).enumerate() {
            if i > 0 {
                self.space = true;
            }
            if word.is_empty() {
                continue;
            }
            self.flush();
            self.out.push_str(word);
        }
    }

    fn flush(&mut self) {
        if self.out.is_empty() {
            self.breaks = 0;
        } else if self.breaks > 0 {
            self.out.push_str(&"\n".repeat(self.breaks));
        } else if self.space {
            self.out.push(' ');
        }
        (self.breaks, self.space) = (0, false);
    }

    fn newline(&mut self, lines: usize) {
        self.breaks = self.breaks.max(lines);
    }

    fn tag(&mut self, tag: &Tag, links: &mut Vec<(Option<String>, usize)>, hidden: &mut Option<String>) {
        let name = tag.name.as_str();
        if HIDDEN.contains(&name) && !tag.closing {
            *hidden = Some(tag.name.clone());
            return;
        }
        match name {
            "li" if !tag.closing => {
                self.newline(1);
                self.flush();
                self.out.push_str("- ");
            }
            "br" | "tr" | "li" => self.newline(1),
            "td" | "th" => self.space = true,
            "a" if !tag.closing => links.push((tag.href.clone(), self.out.len())),
            "a" => {
                if let Some((Some(href), start)) = links.pop() {
                    let shown = self.out.get(start..).unwrap_or("").trim();
                    if !href.is_empty() && !href.starts_with('#') && shown != href {
                        if shown.is_empty() {
                            self.words(&href);
                        } else {
                            // Right after the text, before any space owed.
                            let _ = write!(self.out, " ({href})");
                        }
                    }
                }
            }
            block if BLOCKS.contains(&block) => self.newline(2),
            _ => {}
        }
    }

    fn finish(self) -> String {
        let mut out = String::with_capacity(self.out.len() + 1);
        for line in self.out.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.trim().to_string() + "\n"
    }
}

/// One tag: its name (lower case), whether it closes, and an `a`'s `href`.
struct Tag {
    name: String,
    closing: bool,
    href: Option<String>,
}

impl Tag {
    /// The tag at the start of `source` (which starts with `<`) and what
    /// follows it; `None` when `<` opens no tag (a lone `<` is text).
    fn parse(source: &str) -> Option<(Tag, &str)> {
        let inner = &source[1..];
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(inner) => (true, inner),
            None => (false, inner),
        };
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '!' || c == '?'))
            .unwrap_or(inner.len());
        if name_end == 0 {
            return None;
        }
        let name = inner[..name_end].to_ascii_lowercase();
        let mut attributes = &inner[name_end..];
        let mut href = None;
        loop {
            attributes = attributes.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if attributes.is_empty() {
                return None;
            }
            if let Some(after) = attributes.strip_prefix('>') {
                return Some((Tag { name, closing, href }, after));
            }
            let key_end = attributes
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
                .unwrap_or(attributes.len());
            let key = attributes[..key_end].to_ascii_lowercase();
            attributes = attributes[key_end..].trim_start();
            let Some(after) = attributes.strip_prefix('=') else {
                continue;
            };
            attributes = after.trim_start();
            let (value, after) = if let Some(quote @ ('"' | '\'')) = attributes.chars().next() {
                let value = &attributes[1..];
                let end = value.find(quote)?;
                (&value[..end], &value[end + 1..])
            } else {
                let end = attributes
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .unwrap_or(attributes.len());
                (&attributes[..end], &attributes[end..])
            };
            if key == "href" {
                href = Some(decode(value).trim().to_string());
            }
            attributes = after;
        }
    }
}

/// `text` with its character references decoded: the named ones mail
/// uses, and every numeric one; others are left as they are.
pub fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map_or(rest.len(), |end| end + 1);
        let name = &rest[1..end];
        let decoded = match name.strip_prefix('#') {
            Some(number) => {
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse().ok(),
                };
                code.and_then(char::from_u32)
            }
            None => named(name),
        };
        if let Some(c) = decoded {
            out.push(c);
            rest = rest[end..].strip_prefix(';').unwrap_or(&rest[end..]);
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn named(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "euro" => '€',
        "pound" => '£',
        "middot" => '·',
        "bull" => '•',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_paragraphs_and_lines_stay() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <h1>Hello  <b>Ada</b></h1><p>First\n   line<br>second</p><!-- hidden -->\
            <ul><li>one</li><li>two</li></ul><script>alert(1)</script><p>end</p></body></html>";
        assert_eq!(
            to_text(html),
            "Hello Ada\n\nFirst line\nsecond\n\n- one\n- two\n\nend\n"
        );
    }

    #[test]
    fn links_keep_their_url_and_entities_are_decoded() {
        let html = r##"<p>Read <a href="https:&#x2f;&#x2f;x.example&#x2f;a?b=1&amp;c=2">the news</a>,
            <a href='https://x.example/'>https://x.example/</a> or <a href="#top">top</a>.</p>
            <p>&lt;b&gt;&amp;&quot;&#39; &copy; &unknown; 5 &lt 6</p>"##;
        assert_eq!(
            to_text(html),
            "Read the news (https://x.example/a?b=1&c=2), https://x.example/ or top.\n\n\
             <b>&\"' © &unknown; 5 < 6\n"
        );
    }

    #[test]
    fn a_lone_angle_bracket_is_text() {
        assert_eq!(to_text("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2\n");
        assert_eq!(to_text("a <"), "a <\n");
    }

    #[test]
    fn the_footer_goes_before_the_end_of_the_body() {
        let url = "https://x.example/u?a=1&b=2";
        assert_eq!(
            with_footer("<html><BODY><p>Hi</p></BODY></html>", url),
            format!("<html><BODY><p>Hi</p>{}</BODY></html>", footer(url))
        );
        assert!(footer(url).contains("href=\"https://x.example/u?a=1&amp;b=2\""));
        assert_eq!(
            with_footer("<p>Hi</p>", url),
            format!("<p>Hi</p>\n{}", footer(url))
        );
    }
}
