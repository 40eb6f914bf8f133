//! The templates of each campaign, compiled once per process.
//!
//! They arrive once per campaign, in `campaign.created` (kept in the
//! `templates` and `templates_html` tables), not in each recipient's request. A small cache keeps
//! the compiled templates of the campaigns being sent, so a campaign's
//! templates are compiled once per process, not once per recipient.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use templates::{Sources, TemplateError, Templates};

use crate::store::NotificationStore;

/// Campaigns whose compiled templates are kept; a campaign being sent is
/// looked up for each of its recipients, so a handful at a time is plenty.
const CACHED_CAMPAIGNS: usize = 64;

/// What a campaign's email requests are made from.
#[derive(Debug)]
pub struct CompiledCampaign {
    /// Its templates, compiled, or why they do not compile.
    pub templates: Result<Templates, TemplateError>,
    /// Its own send rate, emails a second, if any.
    pub rate_per_s: Option<f64>,
}

/// A campaign's templates, compiled, and its rate, shared.
pub type Compiled = Arc<CompiledCampaign>;

/// Compiled templates by campaign id, loaded from the store on a miss.
#[derive(Clone)]
pub struct TemplateCache {
    store: NotificationStore,
    compiled: Arc<Mutex<HashMap<String, Compiled>>>,
}

impl TemplateCache {
    /// A cache in front of `store`.
    pub fn new(store: NotificationStore) -> Self {
        Self {
            store,
            compiled: Arc::default(),
        }
    }

    /// The compiled templates of `campaign_id`; `None` while its
    /// `campaign.created` has not been seen yet.
    pub async fn get(&self, campaign_id: &str) -> anyhow::Result<Option<Compiled>> {
        if let Some(compiled) = self.compiled.lock().expect("template cache").get(campaign_id) {
            return Ok(Some(compiled.clone()));
        }
        let Some(stored) = self.store.templates(campaign_id).await? else {
            return Ok(None);
        };
        let compiled: Compiled = Arc::new(CompiledCampaign {
            templates: Templates::compile_sources(&Sources {
                subject: &stored.subject,
                body: &stored.body,
                html: stored.html.as_deref(),
            }),
            rate_per_s: stored.rate_per_s,
        });
        let mut cache = self.compiled.lock().expect("template cache");
        if cache.len() >= CACHED_CAMPAIGNS {
            // Campaigns are sent one or a few at a time: starting over is
            // as good as choosing whom to evict.
            cache.clear();
        }
        cache.insert(campaign_id.to_string(), compiled.clone());
        Ok(Some(compiled))
    }
}
