//! The notifications held back by a pause (`held` in the records, not in
//! Redis), settled once their campaign's course is known again: one round
//! every [`EVERY`], in one instance at a time, looks each campaign with
//! held notifications up on the control board ([`contracts::control`]):
//! - still paused: they wait;
//! - resumed (off the board): their emails are requested again, a page at
//!   a time, each page published before it moves back to `pending` (a
//!   crash in between publishes it twice; the send ledger sends once);
//! - cancelled: each is settled `cancelled`, its outcome published for
//!   campaign-service's counts before it is recorded here.
//!
//! What is held back is at most what was in flight when the pause came (the
//! expansion publishes nothing while paused), so a page at a time is a
//! few pages.

use std::time::Duration;

use contracts::control::Control;

use crate::handlers::Notifier;

/// How often held notifications are looked at: a resumed campaign's held
/// emails are requested again within about this long.
pub const EVERY: Duration = Duration::from_secs(1);

/// Held notifications settled per step.
const PAGE: i64 = 500;

/// One round over every campaign with notifications held back.
pub async fn round(notifier: &Notifier) {
    let campaigns = match notifier.store().held_campaigns().await {
        Ok(campaigns) => campaigns,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot list the campaigns with held notifications"
            );
            return;
        }
    };
    for (campaign_id, generation) in campaigns {
        if let Err(error) = settle(notifier, &campaign_id, generation).await {
            tracing::warn!(campaign = %campaign_id, error = format!("{error:#}"), "cannot settle held notifications; next round");
        }
    }
}

/// Settles the held notifications of `campaign_id`, as its control says,
/// and forgets the campaign if nothing was held since `generation`.
async fn settle(notifier: &Notifier, campaign_id: &str, generation: i64) -> anyhow::Result<()> {
    let mut settled = 0;
    loop {
        let control = notifier.board().control(campaign_id).await?;
        if control == Some(Control::Paused) {
            return Ok(());
        }
        let held = notifier.store().held(campaign_id, PAGE).await?;
        if held.is_empty() {
            break;
        }
        settled += held.len();
        if control == Some(Control::Cancelled) {
            notifier.cancel_held(held).await?;
        } else {
            let ids: Vec<String> = held
                .iter()
                .map(|request| request.notification_id.clone())
                .collect();
            notifier.request_again(campaign_id, held).await?;
            notifier.store().release(&ids).await?;
        }
    }
    if settled > 0 {
        tracing::info!(campaign = %campaign_id, settled, "held notifications settled");
    }
    notifier.store().forget_held(campaign_id, generation).await
}
