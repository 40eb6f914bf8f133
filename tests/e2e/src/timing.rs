//! When MailDev received the emails of a run, for tests of how fast they
//! went.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// When MailDev received each of `emails` whose subject starts with
/// `subject`, in seconds, sorted.
pub fn received(emails: &[Value], subject: &str) -> Vec<f64> {
    let mut times: Vec<f64> = emails
        .iter()
        .filter(|email| email["subject"].as_str().unwrap_or_default().starts_with(subject))
        .map(|email| {
            let at =
                OffsetDateTime::parse(email["time"].as_str().expect("a time"), &Rfc3339).expect("RFC 3339");
            at.unix_timestamp_nanos() as f64 / 1e9
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// The most of `times` within any one second that starts at or after
/// `from` seconds past the first.
pub fn most_in_a_second(times: &[f64], from: f64) -> usize {
    let start = times[0] + from;
    times
        .iter()
        .enumerate()
        .filter(|(_, at)| **at >= start)
        .map(|(i, at)| times[i..].iter().take_while(|later| **later - at < 1.0).count())
        .max()
        .unwrap_or(0)
}
