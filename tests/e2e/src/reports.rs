//! Reports a mailbox provider sends back, as user-service's
//! `POST /api/v1/bounces` takes them (`message/rfc822`).

use serde_json::Value;

use crate::Stack;

/// An abuse report (ARF, RFC 5965) of an email to `address`: a complaint.
pub fn complaint(address: &str) -> String {
    format!(
        "From: fbl@isp.example\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b2\"\r\n\r\n\
--b2\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\
--b2\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\r\n\
--b2\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <n@comms>\r\nTo: <{address}>\r\nSubject: Hi\r\n\r\nHi\r\n--b2--\r\n"
    )
}

impl Stack {
    /// Posts `report` to user-service's bounce endpoint, as a mailbox's
    /// pipe would; its status and JSON answer.
    pub fn post_report(&self, report: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}/api/v1/bounces", self.port("user-service"));
        let response = match ureq::post(&url)
            .set("content-type", "message/rfc822")
            .send_string(report)
        {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("POST /api/v1/bounces: {error}"),
        };
        (response.status(), response.into_json().expect("JSON body"))
    }
}
