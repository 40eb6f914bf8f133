//! The POSTs: each endpoint with events due gets them in order, a batch at
//! a time, signed ([`super::sign`]). A POST answered with a 2xx delivers
//! its events; anything else (another status, no answer within the
//! timeout, a connection refused or closed) puts the events and the
//! endpoint off by a backoff that doubles with each failure in a row, up
//! to `retry_max`; an event still failing `retry_for` after it was kept is
//! dead, for an operator to replay.
//!
//! Each endpoint is served by a task of its own, so a slow or failing one
//! never holds up another; and from the database, never from the streams,
//! so webhooks never hold up sending.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use servicekit::now_ms;

use super::event::Event;
use super::intake::for_subscribers;
use super::sign;
use super::store::{Failure, Subscriber, Target, WebhookStore};
use super::subscribers::Subscribers;
use super::target::GuardedResolver;
use super::Settings;
use crate::store::CampaignStore;

/// Campaign ends made events per round.
const CAMPAIGNS_PER_ROUND: i64 = 100;

/// The longest part of an endpoint's answer kept as its error.
const MAX_ERROR: usize = 300;

/// Serves every endpoint.
#[derive(Clone)]
pub struct Dispatcher {
    store: WebhookStore,
    subscribers: Subscribers,
    campaigns: CampaignStore,
    settings: Settings,
    agent: ureq::Agent,
    /// The endpoints a task is serving now.
    serving: Arc<Mutex<HashSet<String>>>,
}

impl Dispatcher {
    /// A dispatcher of `store`'s events to the endpoints in `subscribers`,
    /// the campaigns' ends read in `campaigns`.
    pub fn new(
        store: WebhookStore,
        subscribers: Subscribers,
        campaigns: CampaignStore,
        settings: Settings,
    ) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(settings.timeout.min(std::time::Duration::from_secs(5)))
            .timeout(settings.timeout)
            .redirects(0)
            .user_agent(concat!("comms-webhooks/", env!("CARGO_PKG_VERSION")))
            .resolver(GuardedResolver {
                allow_link_local: settings.allow_link_local,
            })
            .build();
        Self {
            store,
            subscribers,
            campaigns,
            settings,
            agent,
            serving: Arc::default(),
        }
    }

    /// One round: the campaigns that ended made events, and a task started
    /// for each endpoint with events due that none serves yet; nothing
    /// more than the endpoints' cached list while there is none.
    pub async fn round(&self) {
        let subscribers = match self.subscribers.current().await {
            Ok(subscribers) => subscribers,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot read the webhook endpoints");
                return;
            }
        };
        if subscribers.is_empty() {
            return;
        }
        if let Err(error) = self.campaign_ends(&subscribers).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot make the campaigns' ends events"
            );
        }
        let targets = match self.store.due_targets(now_ms()).await {
            Ok(targets) => targets,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot read the webhooks due");
                return;
            }
        };
        for target in targets {
            if !self
                .serving
                .lock()
                .expect("not poisoned")
                .insert(target.id.clone())
            {
                continue;
            }
            let dispatcher = self.clone();
            tokio::spawn(async move {
                let id = target.id.clone();
                dispatcher.serve(target).await;
                dispatcher.serving.lock().expect("not poisoned").remove(&id);
            });
        }
    }

    /// Keeps an event for each campaign that ended since the oldest
    /// endpoint asking for campaigns' ends was registered.
    async fn campaign_ends(&self, subscribers: &[Subscriber]) -> anyhow::Result<()> {
        let subscribers: Vec<Subscriber> = subscribers
            .iter()
            .filter(|subscriber| subscriber.events.iter().any(|kind| kind.is_campaigns()))
            .cloned()
            .collect();
        let Some(since) = subscribers.iter().map(|subscriber| subscriber.created_at).min() else {
            return Ok(());
        };
        for (campaign_id, cancelled, ended_at) in
            self.store.campaigns_ended(since, CAMPAIGNS_PER_ROUND).await?
        {
            let progress = match self.campaigns.get(&campaign_id).await? {
                Some(campaign) => serde_json::to_value(campaign.progress)?,
                None => Value::Null,
            };
            let event = Event::of_campaign(&campaign_id, cancelled, ended_at, progress);
            let events = for_subscribers(&subscribers, &event);
            self.store
                .enqueue_campaign_end((&campaign_id, ended_at), &events, now_ms())
                .await?;
        }
        Ok(())
    }

    /// Sends `target` its due events, a batch at a time, until none is due
    /// or a POST fails.
    async fn serve(&self, target: Target) {
        let key = match sign::key_of(&target.secret) {
            Ok(key) => key,
            Err(error) => {
                tracing::error!(endpoint = %target.id, %error, "the endpoint's secret is not one");
                return;
            }
        };
        // This task is the endpoint's only sender: it counts the failures
        // in a row as it records them.
        let mut failures = target.failures;
        loop {
            let due = match self
                .store
                .due(&target.id, now_ms(), target.batch_size.max(1))
                .await
            {
                Ok(due) if !due.is_empty() => due,
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(endpoint = %target.id, error = format!("{error:#}"), "cannot read the events due");
                    return;
                }
            };
            let ids: Vec<String> = due.iter().map(|event| event.id.clone()).collect();
            let outcome = self.post(&target, &key, &due).await;
            let recorded = match &outcome {
                Ok(()) => {
                    failures = 0;
                    self.store.delivered(&target.id, &ids, now_ms()).await
                }
                Err(error) => self.record_failure(&target.id, failures, &ids, error).await,
            };
            if let Err(error) = recorded {
                tracing::warn!(endpoint = %target.id, error = format!("{error:#}"), "cannot record a POST's outcome");
                return;
            }
            if let Err(error) = outcome {
                tracing::info!(endpoint = %target.id, events = ids.len(), %error, "a webhook POST failed; tried again later");
                return;
            }
        }
    }

    /// Puts `ids` and endpoint `endpoint_id` off after a failed POST that
    /// follows `failures` others in a row.
    async fn record_failure(
        &self,
        endpoint_id: &str,
        failures: i64,
        ids: &[String],
        error: &str,
    ) -> anyhow::Result<()> {
        let now = now_ms();
        let failure = Failure {
            error,
            now,
            retry_at: now + self.settings.backoff(failures),
            dead_before: now - i64::try_from(self.settings.retry_for.as_millis())?,
        };
        self.store.failed(endpoint_id, ids, &failure).await
    }

    /// POSTs `events` to `target`, signed with `key`.
    async fn post(&self, target: &Target, key: &[u8], events: &[Event]) -> Result<(), String> {
        let (id, body) = body_of(target.batch_size, events);
        let timestamp = now_ms() / 1000;
        let signature = sign::signature(key, &id, timestamp, body.as_bytes());
        let request = self
            .agent
            .post(&target.url)
            .set("content-type", "application/json")
            .set("webhook-id", &id)
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", &signature);
        let answer = tokio::task::spawn_blocking(move || match request.send_string(&body) {
            Ok(response) if (200..300).contains(&response.status()) => Ok(()),
            Ok(response) | Err(ureq::Error::Status(_, response)) => Err(status_error(response)),
            Err(ureq::Error::Transport(transport)) => Err(transport_error(&transport)),
        })
        .await;
        answer.unwrap_or_else(|error| Err(format!("the POST's task failed: {error}")))
    }
}

/// The `webhook-id` and the body of a POST of `events`: the event itself
/// (and its id) to an endpoint that takes one at a time; otherwise
/// `{"events": [...]}`, under an id made of theirs.
fn body_of(batch_size: i64, events: &[Event]) -> (String, String) {
    match events {
        [event] if batch_size <= 1 => (event.id.clone(), event.to_json().to_string()),
        _ => {
            let ids: Vec<&str> = events.iter().map(|event| event.id.as_str()).collect();
            let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, ids.join(",").as_bytes());
            let body = json!({ "events": events.iter().map(Event::to_json).collect::<Vec<_>>() });
            (format!("batch_{}", id.simple()), body.to_string())
        }
    }
}

/// A non-2xx answer as an error: its status and the start of its body.
fn status_error(response: ureq::Response) -> String {
    let status = response.status();
    let mut text = response.into_string().unwrap_or_default();
    if text.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    format!("HTTP {status}: {}", text.trim())
}

/// A failure to reach an endpoint, said without its URL: an endpoint's
/// URL may carry a credential (a token in its query), and the text is kept
/// as the endpoint's `last_error`, shown by the API. Its kind, message and
/// cause say what went wrong.
fn transport_error(transport: &ureq::Transport) -> String {
    let mut text = transport.kind().to_string();
    if let Some(message) = transport.message() {
        text = format!("{text}: {message}");
    }
    if let Some(cause) = std::error::Error::source(transport) {
        text = format!("{text}: {cause}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_to_connect_is_said_without_the_url_and_its_credentials() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://user:pass@127.0.0.1:{port}/hooks?token=s3cret");
        let Err(ureq::Error::Transport(transport)) = ureq::post(&url).send_string("{}") else {
            panic!("nothing listens on {port}");
        };
        assert!(
            transport.to_string().contains("s3cret"),
            "ureq's own text names it"
        );
        let said = transport_error(&transport);
        assert!(said.contains("Connection Failed"), "{said}");
        assert!(!said.contains("s3cret") && !said.contains("pass"), "{said}");
    }
}
