//! campaign-service's side of the control board ([`contracts::control`]):
//! the board follows the campaigns' statuses in the database.
//!
//! A pause, resume or cancel changes the database first, then the board.
//! If the board cannot be reached then (Redis away), the change still
//! stands, and the round [`mend`], run once per cluster every [`EVERY`],
//! brings the board in line: the services behind read the change a round
//! later, and nothing is sent meanwhile that a pause would have stopped
//! but for what Redis being away stops anyway.

use std::time::Duration;

use contracts::control::{Control, ControlBoard};

use crate::store::{Campaign, CampaignStatus, CampaignStore};

/// How often [`mend`] runs.
pub const EVERY: Duration = Duration::from_secs(2);

/// The control a campaign in `status` has on the board: none while it may
/// send.
pub fn control_of(status: CampaignStatus) -> Option<Control> {
    match status {
        CampaignStatus::Paused => Some(Control::Paused),
        CampaignStatus::Cancelled => Some(Control::Cancelled),
        CampaignStatus::Scheduled
        | CampaignStatus::Expanding
        | CampaignStatus::Sending
        | CampaignStatus::Completed => None,
    }
}

/// Puts `campaign`'s control on the board, as its status says.
pub async fn follow(board: &ControlBoard, campaign: &Campaign) -> anyhow::Result<()> {
    board.set(&campaign.id, control_of(campaign.status)).await?;
    Ok(())
}

/// One round: every campaign paused, or cancelled and not settled, has
/// its control on the board; every paused one on the board that is not
/// paused any more is taken off (or marked cancelled). Cancelled ones stay.
pub async fn mend(store: &CampaignStore, board: &ControlBoard) {
    if let Err(error) = mend_once(store, board).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "cannot bring the control board in line"
        );
    }
}

async fn mend_once(store: &CampaignStore, board: &ControlBoard) -> anyhow::Result<()> {
    let on_board = board.all().await?;
    for campaign in store.stopped().await? {
        let control = control_of(campaign.status);
        if !on_board
            .iter()
            .any(|(id, on)| *id == campaign.id && Some(*on) == control)
        {
            tracing::info!(campaign = %campaign.id, status = campaign.status.as_str(), "control board mended");
            follow(board, &campaign).await?;
        }
    }
    for (id, control) in on_board {
        if control != Control::Paused {
            continue;
        }
        let Some(campaign) = store.get(&id).await? else {
            continue;
        };
        if campaign.status != CampaignStatus::Paused {
            tracing::info!(campaign = %id, status = campaign.status.as_str(), "control board mended");
            follow(board, &campaign).await?;
        }
    }
    Ok(())
}
