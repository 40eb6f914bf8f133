//! The end of the scenarios that prove an email request handled twice
//! (a producer that published it twice) is sent once, whatever else goes
//! on: several senders, a skewed clock.

use std::time::Duration;

use contracts::EMAILS;
use testkit::SlowSmtp;

use crate::Stack;

impl Stack {
    /// Copies every email request on `comms:emails` while the first sends
    /// of campaign `id` are still with the slow `smtp` (so each id is held
    /// by the sender of its first entry when its copy arrives); waits until
    /// the campaign completes with its `users` emails sent and every copy
    /// is handled (any second send a copy could cause is made by then);
    /// asserts that `smtp` received each email once.
    pub fn assert_copies_are_not_sent(&self, id: &str, users: u64, smtp: &SlowSmtp) {
        let copied = self.copy_entries(EMAILS);
        assert_eq!(copied, users, "no request was done yet");

        let done = self.wait_completed(id, Duration::from_secs(120));
        assert_eq!(done["progress"]["sent"], users, "{done}");
        self.wait_for("every copy answered", Duration::from_secs(120), || {
            self.group_caught_up(EMAILS, "email-service")
        });

        let copies = smtp.copies();
        let twice: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
        assert!(
            twice.is_empty(),
            "sent more than once: {} ids, {twice:?}",
            twice.len()
        );
        assert_eq!(copies.len() as u64, users, "one Message-ID per user");
    }
}
