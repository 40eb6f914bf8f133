//! Pausing, resuming and cancelling a campaign: what campaign-service
//! decides, and how every instance of the services behind it learns it.
//!
//! The board (`comms:control`, a [`Board`]): a campaign paused or
//! cancelled has its [`Control`] there, set by campaign-service from its
//! database (at each change, and again by a round that mends the board
//! if a change could not reach it). Every step that would do work for a
//! campaign looks its campaign up first, for a whole batch in one round
//! trip: user-service before each page of the audience,
//! notification-service before requesting emails, email-service before
//! each send. So a pause stops new sends on every instance at their next
//! batch, without waiting for an entry to reach them. A resumed campaign
//! has no value: a lookup that fails is retried, never read as "go".
//!
//! What a pause holds back waits in notification-service's records, not
//! in Redis (`held`); its own round requests those emails again once their
//! campaign is off the board, or settles them `cancelled` once it is
//! cancelled. A cancelled campaign stays on the board for good, so that a
//! late copy of one of its entries is never sent.

use eventstore::board::Board;
use eventstore::Redis;
use serde::{Deserialize, Serialize};

/// The board's key.
pub const BOARD: &str = "comms:control";

/// Why a campaign is on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Nothing new is sent; what is in flight finishes; the rest waits.
    Paused,
    /// Nothing more is sent, for good: every recipient not yet sent ends
    /// `cancelled`.
    Cancelled,
}

impl Control {
    /// The value on the board.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }

    /// The control a board value stands for; an unknown value (written by
    /// hand, or by a newer version) stops the campaign as a pause would,
    /// which loses nothing.
    fn from_board(value: &str) -> Self {
        match value {
            "cancelled" => Self::Cancelled,
            _ => Self::Paused,
        }
    }
}

/// The board of campaign controls, typed.
#[derive(Clone)]
pub struct ControlBoard(Board);

impl ControlBoard {
    /// The board on `redis`.
    pub fn new(redis: Redis) -> Self {
        Self(Board::new(redis, BOARD))
    }

    /// Puts campaign `id` under `control`, or (`None`) takes it off the
    /// board.
    pub async fn set(&self, id: &str, control: Option<Control>) -> eventstore::Result<()> {
        match control {
            Some(control) => self.0.set(id, control.as_str()).await,
            None => self.0.remove(id).await,
        }
    }

    /// The control of each of `ids`, in one round trip.
    pub async fn controls(&self, ids: &[&str]) -> eventstore::Result<Vec<Option<Control>>> {
        Ok(self
            .0
            .get_many(ids)
            .await?
            .into_iter()
            .map(|value| value.as_deref().map(Control::from_board))
            .collect())
    }

    /// The control of campaign `id`.
    pub async fn control(&self, id: &str) -> eventstore::Result<Option<Control>> {
        Ok(self.controls(&[id]).await?.pop().flatten())
    }

    /// Every campaign on the board, with its control.
    pub async fn all(&self) -> eventstore::Result<Vec<(String, Control)>> {
        Ok(self
            .0
            .entries()
            .await?
            .into_iter()
            .map(|(id, value)| (id, Control::from_board(&value)))
            .collect())
    }

    /// The controls of the campaigns of a batch, by campaign id: one
    /// lookup for the distinct ids among `ids`.
    pub async fn of_batch<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> eventstore::Result<std::collections::HashMap<String, Control>> {
        let mut distinct: Vec<&str> = ids.into_iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let controls = self.controls(&distinct).await?;
        Ok(distinct
            .into_iter()
            .zip(controls)
            .filter_map(|(id, control)| Some((id.to_string(), control?)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_values_read_back_and_unknown_ones_pause() {
        for control in [Control::Paused, Control::Cancelled] {
            assert_eq!(Control::from_board(control.as_str()), control);
        }
        assert_eq!(Control::from_board("stopped"), Control::Paused);
    }
}
