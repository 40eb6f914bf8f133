//! Expanding a campaign's audience: one `notification.requested` per user
//! its audience filter selects (every user, without one: see
//! [`contracts::audience`]), published page by page, once per campaign
//! however often the campaign is announced. The filter is evaluated as
//! each page is read: the expansion selects the users that match when it
//! runs. Each page's count is saved with the cursor, and the campaign's
//! total at the end is their sum: exactly the notifications requested,
//! whatever changed in the users meanwhile.
//!
//! The cursor (last user id published) is saved only after the page's
//! events are in the stream, so a crash re-publishes at most one page (with
//! the same deterministic notification ids, which downstream absorbs) and
//! never skips one. A redelivered `campaign.created` resumes from the cursor;
//! a finished one only re-announces the total.
//!
//! One expansion per campaign at a time: announcements of a campaign queue
//! up behind a stopped user-service (re-announcements, redeliveries, several
//! instances), and each expanding from the same cursor would publish the
//! audience once per copy. So:
//! - within a process, an announcement of a campaign this process is
//!   already expanding is acknowledged and does nothing ([`Running`]);
//! - across processes, the expansion is done under a lease in the database
//!   (owner: the consumer name, unique to the process, so that two
//!   instances never take each other's lease for their own). The lease is renewed
//!   before each page is published, and a page is published only if the
//!   renewal found the lease still ours (and, while paused, every third of
//!   its length); an instance that finds the lease held by another retries
//!   the announcement until that expansion ends, or, if its holder died,
//!   until its lease runs out and the expansion resumes here.
//!
//! Flow control: a page is published only while the streams behind it
//! (`comms:notifications`, `comms:emails`, `comms:deliveries`) hold fewer
//! than `max_backlog` entries that a consumer still needs (trimmed first:
//! [`eventstore::trim::backlog`]), checked and published as one step for
//! all expansions at once ([`servicekit::pace`]). The expansions go at the pace
//! of the slowest service behind them, and Redis holds a bounded part of
//! the campaigns whatever their audience and however many run: a
//! million-user campaign, or twenty at once, take no more Redis than a
//! ten-thousand-user one. An expansion that waits keeps its lease.
//!
//! Control ([`contracts::control`]): before each page, the expansion looks
//! its campaign up on the control board. While it is paused, nothing is
//! published (the lease kept, the announcement's entry pending: a paused
//! campaign holds no Redis memory that grows with its audience). Once it
//! is cancelled, the expansion ends there: the users not yet requested are
//! announced with the total as `not_expanded`, which campaign-service
//! counts as cancelled.
//!
//! An announcement that met the expansion in this process is acknowledged:
//! the expansion finishes under its own announcement's entry, which stays
//! pending until then (and is redelivered if its process dies); campaign-service
//! re-announces a campaign whose audience is still unknown once user-service
//! has settled the last announcement.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::audience::Filter;
use contracts::control::{Control, ControlBoard};
use contracts::{notification_id, AudienceExpanded, CampaignCreated, NotificationRequested, Streams};
use eventstore::{Delivery, Envelope, Event, HandleError, Publisher, Redis};
use servicekit::now_ms;

use crate::store::{Ended, User, UserStore};
use crate::suppressions::SuppressionStore;
use servicekit::pace::{Pacer, Slot, PACE_POLL};

/// How often a paused expansion says it waits.
const PAUSE_REPORT: Duration = Duration::from_secs(15);

/// What the expansion handler needs.
#[derive(Clone)]
pub struct Expander {
    /// Users and cursors.
    store: UserStore,
    /// Who is not to be emailed.
    list: SuppressionStore,
    /// Where notifications go.
    publisher: Publisher,
    /// The streams, and their partitions.
    streams: Arc<Streams>,
    /// The window every expansion shares, over the streams behind them.
    pacer: Pacer,
    /// Users per page.
    page_size: i64,
    /// This instance as a lease owner: its consumer name.
    owner: String,
    /// How long an expansion lease lasts without renewal, in milliseconds.
    /// It is renewed before every page (a page takes milliseconds), so only
    /// a dead or stuck expander lets it run out; another instance takes
    /// over after that.
    lease_ms: i64,
    /// The campaigns this process is expanding now.
    running: Running,
    /// Which campaigns are paused or cancelled.
    board: ControlBoard,
}

/// What an expansion may do next.
enum Next {
    /// Publish the page, under this slot of the window.
    Publish(Slot),
    /// Stop: the lease was lost to another instance.
    LeaseLost,
    /// End: the campaign was cancelled.
    Cancelled,
}

impl Expander {
    /// An expander on `store` (skipping those on `list`) publishing on `redis`, `page_size` users at
    /// a time while the streams behind it hold fewer than `max_backlog`
    /// entries (one page at a time across instances under `pace`), taking
    /// expansion leases of `lease` as `owner`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: UserStore,
        list: SuppressionStore,
        redis: Redis,
        streams: Streams,
        page_size: i64,
        max_backlog: u64,
        pace: eventstore::lease::Lease,
        owner: String,
        lease: Duration,
    ) -> Self {
        let downstream = [&streams.notifications, &streams.emails, &streams.deliveries]
            .iter()
            .flat_map(|stream| stream.partitions().to_vec())
            .collect();
        Self {
            store,
            list,
            publisher: Publisher::new(redis.clone()),
            board: ControlBoard::new(redis.clone()),
            pacer: Pacer::new(redis, pace, downstream, max_backlog),
            streams: Arc::new(streams),
            page_size,
            owner,
            lease_ms: lease.as_millis() as i64,
            running: Running::default(),
        }
    }

    /// Handles one entry of `comms:campaigns`: expands `campaign.created`,
    /// ignores the stream's other event types.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != CampaignCreated::TYPE {
            return Ok(());
        }
        let campaign: CampaignCreated = delivery.envelope.decode()?;
        if campaign.resend_of.is_some() {
            // Its audience comes from outcomes: notification-service's.
            return Ok(());
        }
        // campaign-service checked it at its door: one that does not parse
        // here never will.
        let filter = campaign
            .audience
            .as_deref()
            .map(Filter::parse)
            .transpose()
            .map_err(|error| HandleError::Poison(format!("audience filter: {error}")))?;
        let Some(_running) = self.running.enter(&campaign.campaign_id) else {
            tracing::info!(campaign = %campaign.campaign_id, "already being expanded here; announcement ignored");
            return Ok(());
        };
        let trace = delivery.envelope.trace.clone();
        let Some(ended) = self
            .expand(&campaign.campaign_id, filter.as_ref(), trace.as_deref())
            .await?
        else {
            return Ok(());
        };
        self.announce_total(&campaign.campaign_id, ended, trace.as_deref())
            .await?;
        Ok(())
    }

    /// Publishes the size of the audience of campaign `id` (and how many
    /// of it were never requested).
    async fn announce_total(&self, id: &str, ended: Ended, trace: Option<&str>) -> anyhow::Result<()> {
        let announcement = AudienceExpanded {
            campaign_id: id.to_string(),
            total: ended.total,
            not_expanded: ended.not_expanded,
        };
        let envelope =
            Envelope::with_id(&announcement, format!("expanded:{id}"))?.traced(trace.map(str::to_string));
        self.publisher
            .publish(self.streams.campaigns.name(), &envelope)
            .await?;
        Ok(())
    }

    /// Publishes the notifications of every user `filter` selects not yet
    /// covered by the cursor, each carrying `trace`, until the end or the
    /// campaign's cancellation; returns how it ended, or `None` when
    /// another instance holds the expansion.
    async fn expand(
        &self,
        id: &str,
        filter: Option<&Filter>,
        trace: Option<&str>,
    ) -> anyhow::Result<Option<Ended>> {
        if let Some(ended) = self.store.expansion(id).await?.ended {
            return Ok(Some(ended));
        }
        if !self
            .store
            .take_lease(id, &self.owner, now_ms() + self.lease_ms)
            .await?
        {
            // Retried, not acknowledged: the holder may be dead (this entry
            // may be its own, claimed), and then its lease runs out and
            // the expansion resumes here; if it lives, the expansion
            // finishes and the retry finds the total.
            anyhow::bail!("campaign {id} is being expanded by another instance; retried until it ends or its lease runs out");
        }
        // Read under the lease: the previous holder may have moved it.
        let expansion = self.store.expansion(id).await?;
        if let Some(ended) = expansion.ended {
            return Ok(Some(ended));
        }
        let mut cursor = expansion.cursor;
        // The users are seeded before any expansion starts: the audience is
        // known now (as the users stand: the figure at the end is exact),
        // while the pages go out at the pipeline's pace.
        let audience = Ended {
            total: self.store.count_matching(filter, i64::MAX).await?,
            not_expanded: 0,
        };
        self.announce_total(id, audience, trace).await?;
        loop {
            let page = self.store.page_matching(filter, cursor, self.page_size).await?;
            let Some(last) = page.last() else {
                break;
            };
            let last_id = last.id;
            let slot = match self.wait_for_room(id, page.len() as u64).await? {
                Next::Publish(slot) => slot,
                Next::LeaseLost => return Ok(None),
                Next::Cancelled => return self.end_cancelled(id, filter, cursor).await.map(Some),
            };
            let requested = page.len() as i64;
            if !self
                .store
                .renew_lease(id, &self.owner, now_ms() + self.lease_ms)
                .await?
            {
                slot.leave().await?;
                tracing::warn!(campaign = %id, cursor, "expansion lease lost to another instance; stopping");
                return Ok(None);
            }
            let published = self.publish_page(id, page, trace).await;
            slot.leave().await?;
            published?;
            self.store.advance(id, last_id, requested).await?;
            cursor = last_id;
        }
        let ended = Ended {
            total: self.published(id, filter, cursor).await?,
            not_expanded: 0,
        };
        self.store.finish(id, ended).await?;
        tracing::info!(campaign = %id, total = ended.total, "audience expanded");
        Ok(Some(ended))
    }

    /// How many notifications the expansion of campaign `id` published up
    /// to `cursor`: as counted page by page, or, for an expansion begun
    /// before pages were counted, the users `filter` selects up to it now.
    async fn published(&self, id: &str, filter: Option<&Filter>, cursor: i64) -> anyhow::Result<i64> {
        match self.store.expansion(id).await?.published {
            Some(published) => Ok(published),
            None => self.store.count_matching(filter, cursor).await,
        }
    }

    /// Ends the expansion of cancelled campaign `id` at `cursor` (the last
    /// user requested): its audience is what was requested and the users
    /// `filter` selects past the cursor, never requested.
    async fn end_cancelled(&self, id: &str, filter: Option<&Filter>, cursor: i64) -> anyhow::Result<Ended> {
        let published = self.published(id, filter, cursor).await?;
        let not_expanded = self.store.count_matching(filter, i64::MAX).await?
            - self.store.count_matching(filter, cursor).await?;
        let total = published + not_expanded;
        let ended = Ended { total, not_expanded };
        self.store.finish(id, ended).await?;
        tracing::info!(campaign = %id, total, not_expanded = ended.not_expanded, "campaign cancelled: its expansion ends");
        Ok(ended)
    }

    /// Publishes one notification per user of `page` for campaign `id`,
    /// each carrying `trace`; those of users on the suppression list are
    /// marked `suppressed` (looked up in one query for the page), so that
    /// they are counted, and never sent.
    async fn publish_page(&self, id: &str, page: Vec<User>, trace: Option<&str>) -> anyhow::Result<()> {
        let notifications = &self.streams.notifications;
        let suppressed = self.list.suppressed_among(&page).await?;
        let envelopes = page
            .into_iter()
            .zip(suppressed)
            .map(|(user, suppressed)| {
                let partition = notifications.for_key(&user.email);
                let notification = notification_id(id, user.id);
                let event = NotificationRequested {
                    notification_id: notification.clone(),
                    campaign_id: id.to_string(),
                    user_id: user.id,
                    email: user.email,
                    name: user.name,
                    suppressed,
                };
                let envelope = Envelope::with_id(&event, notification)?.traced(trace.map(str::to_string));
                Ok((partition, envelope))
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        self.publisher.publish_many(&envelopes).await?;
        Ok(())
    }

    /// Waits until campaign `id` is neither paused nor cancelled and the
    /// streams behind the expansions have room for `page` more of its
    /// entries, and returns the slot to publish them under. Renews the
    /// lease every third of its length while it waits.
    async fn wait_for_room(&self, id: &str, page: u64) -> anyhow::Result<Next> {
        let mut reported = Instant::now();
        let mut renewed = Instant::now();
        let renew_every = Duration::from_millis(self.lease_ms as u64 / 3);
        loop {
            match self.board.control(id).await? {
                Some(Control::Cancelled) => return Ok(Next::Cancelled),
                Some(Control::Paused) => {
                    if reported.elapsed() >= PAUSE_REPORT {
                        tracing::info!(campaign = %id, "expansion waits: the campaign is paused");
                        reported = Instant::now();
                    }
                }
                None => match self.pacer.enter(page).await? {
                    Ok(slot) => return Ok(Next::Publish(slot)),
                    Err(backlog) => {
                        if reported.elapsed() >= PAUSE_REPORT {
                            tracing::info!(campaign = %id, backlog, max_backlog = self.pacer.max_backlog(), "expansion paused: the services behind it are catching up");
                            reported = Instant::now();
                        }
                    }
                },
            }
            if renewed.elapsed() >= renew_every {
                if !self
                    .store
                    .renew_lease(id, &self.owner, now_ms() + self.lease_ms)
                    .await?
                {
                    tracing::warn!(campaign = %id, "expansion lease lost while waiting; stopping");
                    return Ok(Next::LeaseLost);
                }
                renewed = Instant::now();
            }
            tokio::time::sleep(PACE_POLL).await;
        }
    }
}

/// The campaigns this process is expanding.
#[derive(Clone, Default)]
struct Running(Arc<Mutex<HashSet<String>>>);

impl Running {
    /// Marks `campaign_id` as being expanded here until the guard drops;
    /// `None` if it already is.
    fn enter(&self, campaign_id: &str) -> Option<RunningGuard> {
        let inserted = self
            .0
            .lock()
            .expect("running set")
            .insert(campaign_id.to_string());
        inserted.then(|| RunningGuard {
            running: self.clone(),
            campaign_id: campaign_id.to_string(),
        })
    }
}

/// Holds a campaign in [`Running`] while its expansion runs.
struct RunningGuard {
    running: Running,
    campaign_id: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.running
            .0
            .lock()
            .expect("running set")
            .remove(&self.campaign_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_runs_once_per_process_until_its_guard_drops() {
        let running = Running::default();
        let first = running.enter("c1").expect("free");
        assert!(running.enter("c1").is_none(), "a second expansion is refused");
        assert!(running.enter("c2").is_some(), "other campaigns are not held up");
        drop(first);
        assert!(running.enter("c1").is_some(), "free again once done");
    }
}
