//! Reading bounce and complaint reports: an RFC 3464 delivery status
//! notification (`multipart/report; report-type=delivery-status`) or an RFC
//! 5965 abuse report (ARF, `report-type=feedback-report`), as the raw
//! message a mailbox received, parsed with `mail-parser`.
//!
//! What each report says of each recipient ([`Finding`]):
//! - a DSN's recipient with `Action: failed` and a `5.x.x` status is a
//!   hard bounce; a `4.x.x` failure or `Action: delayed` a soft one, which
//!   is only counted; `delivered`, `relayed` and `expanded` say nothing;
//! - an ARF report is a complaint by its recipient.
//!
//! The recipient is the report's `Final-Recipient` (or
//! `Original-Recipient`, or ARF's `Original-Rcpt-To`), else the `To` of
//! the original message the report carries.

use mail_parser::{MessageParser, MimeHeaders};

/// What a report says of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The address.
    pub address: String,
    /// What happened to it.
    pub kind: Kind,
    /// The status and diagnostic, or the feedback type.
    pub detail: String,
}

/// What a report says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The address does not exist: suppress it.
    HardBounce,
    /// A temporary failure: counted, not suppressed.
    SoftBounce,
    /// The recipient reported the email as spam: suppress it.
    Complaint,
}

/// Which kind of report a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportType {
    /// RFC 3464.
    DeliveryStatus,
    /// RFC 5965.
    FeedbackReport,
}

impl ReportType {
    /// The `report-type` it is named by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeliveryStatus => "delivery-status",
            Self::FeedbackReport => "feedback-report",
        }
    }
}

/// What one report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its type.
    pub report_type: ReportType,
    /// What it says of each recipient.
    pub findings: Vec<Finding>,
    /// The notification whose email it is about, when it carries the
    /// original message's `Message-ID` (`<notification id@comms>`).
    pub notification_id: Option<String>,
}

/// Reads `raw`: what it says, or what is missing, to show the sender of the
/// report.
pub fn parse(raw: &[u8]) -> Result<Report, String> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or("the body is not a MIME message")?;
    let report_type = message
        .content_type()
        .filter(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let report_type = match report_type.as_deref() {
        Some("delivery-status") => ReportType::DeliveryStatus,
        Some("feedback-report") => ReportType::FeedbackReport,
        _ => {
            return Err("not a report: expected Content-Type multipart/report with \
                 report-type=delivery-status (RFC 3464) or report-type=feedback-report (RFC 5965)"
                .into())
        }
    };
    let part_of = |subtype: &str| {
        message.parts.iter().find(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("message")
                    && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case(subtype))
            })
        })
    };
    // The original message (or its headers): its `To` when the report
    // names no recipient, its `Message-ID` for the notification.
    let original = message
        .parts
        .iter()
        .skip(1)
        .find_map(|part| match part.message() {
            Some(nested) => Some(nested.clone()),
            None if part
                .content_type()
                .is_some_and(|ct| ct.subtype() == Some("rfc822-headers")) =>
            {
                MessageParser::default().parse(part.contents())
            }
            None => None,
        });
    let original_to = original
        .as_ref()
        .and_then(|original| Some(original.to()?.first()?.address()?.to_string()));
    let notification_id = original
        .as_ref()
        .and_then(|original| original.message_id())
        .and_then(|id| id.strip_suffix("@comms"))
        .map(str::to_string);
    let subtype = report_type.as_str();
    let fields = part_of(subtype)
        .and_then(|part| part.text_contents())
        .ok_or_else(|| format!("the report has no message/{subtype} part"))?;
    let groups = field_groups(fields);
    let findings = match report_type {
        ReportType::DeliveryStatus => delivery_findings(&groups, original_to.as_deref())?,
        ReportType::FeedbackReport => {
            let report = groups.first().ok_or("the feedback report is empty")?;
            let address = field(report, "original-rcpt-to")
                .map(str::to_string)
                .or(original_to)
                .ok_or("the feedback report names no recipient (Original-Rcpt-To) and carries no original message with a To")?;
            let feedback = field(report, "feedback-type").unwrap_or("abuse");
            vec![Finding {
                address,
                kind: Kind::Complaint,
                detail: format!("complaint (Feedback-Type: {feedback})"),
            }]
        }
    };
    Ok(Report {
        report_type,
        findings,
        notification_id,
    })
}

/// The findings of a DSN's per-recipient groups (every group after the
/// first, which is about the message).
fn delivery_findings(
    groups: &[Vec<(String, String)>],
    original_to: Option<&str>,
) -> Result<Vec<Finding>, String> {
    let recipients = groups.get(1..).unwrap_or_default();
    if recipients.is_empty() {
        return Err(
            "the delivery status names no recipient (no per-recipient fields after the first group)".into(),
        );
    }
    let mut findings = Vec::new();
    for group in recipients {
        let address = field(group, "final-recipient")
            .or_else(|| field(group, "original-recipient"))
            .map(|value| {
                value
                    .split_once(';')
                    .map_or(value, |(_, address)| address)
                    .trim()
                    .to_string()
            })
            .or_else(|| original_to.map(str::to_string))
            .ok_or("a recipient of the delivery status has no Final-Recipient")?;
        let action = field(group, "action")
            .ok_or_else(|| format!("the delivery status of {address} has no Action"))?
            .to_ascii_lowercase();
        let status = field(group, "status").unwrap_or_default();
        let kind = match (action.as_str(), status.chars().next()) {
            ("failed", Some('5')) => Kind::HardBounce,
            ("failed" | "delayed", _) => Kind::SoftBounce,
            _ => continue,
        };
        let diagnostic = field(group, "diagnostic-code").map_or(String::new(), |code| format!(" ({code})"));
        findings.push(Finding {
            address,
            kind,
            detail: format!("bounce: Action {action}, Status {status}{diagnostic}"),
        });
    }
    Ok(findings)
}

/// The value of the first field `name` (lower-case) of `group`.
fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

/// A report's fields: groups of `Name: value` lines (folded lines joined)
/// separated by blank lines; names lower-cased.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if !groups.last().is_some_and(Vec::is_empty) {
                groups.push(Vec::new());
            }
            continue;
        }
        let group = groups.last_mut().expect("one group at least");
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    groups.retain(|group| !group.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DSN of one hard and one soft bounce, as a mail server sends it.
    pub(crate) fn dsn(hard: &str, soft: &str) -> String {
        format!(
            "From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@comms.example\r\nSubject: Undelivered Mail\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
Final-Recipient: rfc822; {hard}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n\
Final-Recipient: rfc822; {soft}\r\nAction: delayed\r\nStatus: 4.2.2\r\n\r\n\
--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <n1@comms>\r\nTo: {hard}\r\n\r\n--b1--\r\n"
        )
    }

    #[test]
    fn a_dsn_tells_a_hard_bounce_from_a_soft_one() {
        let report = parse(dsn("gone@example.com", "full@example.com").as_bytes()).unwrap();
        let (kind, findings) = (report.report_type, report.findings);
        assert_eq!(kind, ReportType::DeliveryStatus);
        assert_eq!(
            report.notification_id.as_deref(),
            Some("n1"),
            "from the original Message-ID"
        );
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].address, "gone@example.com");
        assert_eq!(findings[0].kind, Kind::HardBounce);
        assert!(
            findings[0].detail.contains("5.1.1") && findings[0].detail.contains("no such user"),
            "{:?}",
            findings[0]
        );
        assert_eq!(
            (findings[1].address.as_str(), findings[1].kind),
            ("full@example.com", Kind::SoftBounce)
        );
    }

    #[test]
    fn an_arf_report_is_a_complaint_by_the_original_recipient() {
        let arf = "From: fbl@isp.example\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b2\"\r\n\r\n\
--b2\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\
--b2\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\r\n\
--b2\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <n2@comms>\r\nTo: Ada <ada@example.com>\r\nSubject: Hi\r\n\r\nDear Ada\r\n--b2--\r\n";
        let report = parse(arf.as_bytes()).unwrap();
        let (kind, findings) = (report.report_type, report.findings);
        assert_eq!(kind, ReportType::FeedbackReport);
        assert_eq!(report.notification_id.as_deref(), Some("n2"));
        assert_eq!(
            findings,
            [Finding {
                address: "ada@example.com".into(),
                kind: Kind::Complaint,
                detail: "complaint (Feedback-Type: abuse)".into(),
            }]
        );
    }

    #[test]
    fn what_is_not_a_report_or_lacks_its_parts_is_named() {
        let plain = "From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
        assert!(parse(plain.as_bytes()).unwrap_err().contains("multipart/report"));
        let no_status = "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n";
        assert!(parse(no_status.as_bytes())
            .unwrap_err()
            .contains("message/delivery-status"));
        let no_recipient =
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n--b--\r\n";
        assert!(parse(no_recipient.as_bytes())
            .unwrap_err()
            .contains("names no recipient"));
    }
}
