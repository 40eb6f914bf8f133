//! Each email's unsubscribe link: `<PUBLIC_URL>/unsubscribe/<token>`, the
//! token signed for its recipient and campaign
//! ([`contracts::unsubscribe`]), and, where an unsubscribe address is
//! configured, a `mailto:` beside it, as `List-Unsubscribe` offers both
//! (RFC 2369).

use contracts::unsubscribe::TokenKey;
use servicekit::now_ms;

/// Builds the links of every email.
#[derive(Debug, Clone)]
pub struct UnsubscribeLinks {
    key: TokenKey,
    /// The public URL, without a trailing `/`.
    base: String,
    mailto: Option<String>,
}

/// One email's ways to unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The one-click URL (its body and `List-Unsubscribe`).
    pub url: String,
    /// The `mailto:` alternative, if an address is configured.
    pub mailto: Option<String>,
}

impl UnsubscribeLinks {
    /// Links on `public_url` (`http://` or `https://`), signed with `key`,
    /// with a `mailto:` to `mailto` if set; an error naming the setting
    /// for a URL of another scheme or an address without `@`.
    pub fn new(key: TokenKey, public_url: &str, mailto: Option<&str>) -> anyhow::Result<Self> {
        let base = public_url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(base)
            .map_err(|error| anyhow::anyhow!("PUBLIC_URL is not a URL ({error}): `{base}`"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            anyhow::bail!("PUBLIC_URL must be an http:// or https:// URL with a host, not `{base}`");
        }
        let mailto = mailto.map(str::trim).filter(|address| !address.is_empty());
        if let Some(address) = mailto {
            if !address.contains('@') || address.contains(['?', '<', '>', ' ']) {
                anyhow::bail!("UNSUBSCRIBE_MAILTO must be an email address, not `{address}`");
            }
        }
        Ok(Self {
            key,
            base: base.to_string(),
            mailto: mailto.map(str::to_string),
        })
    }

    /// The links of `user_id`'s email of `campaign_id`, valid from now.
    pub fn for_recipient(&self, user_id: i64, campaign_id: &str) -> Link {
        let token = self.key.sign(user_id, campaign_id, now_ms() / 1000);
        Link {
            url: format!("{}/unsubscribe/{token}", self.base),
            mailto: self
                .mailto
                .as_ref()
                .map(|address| format!("mailto:{address}?subject=unsubscribe%20{token}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        contracts::unsubscribe::key_for(false, "").unwrap()
    }

    #[test]
    fn a_link_carries_a_token_that_verifies_to_its_recipient() {
        let links =
            UnsubscribeLinks::new(key(), "https://mail.example.com/", Some("leave@example.com")).unwrap();
        let link = links.for_recipient(7, "c-1");
        let token = link
            .url
            .strip_prefix("https://mail.example.com/unsubscribe/")
            .unwrap();
        let named = key().verify(token, now_ms() / 1000).unwrap();
        assert_eq!((named.user_id, named.campaign_id.as_str()), (7, "c-1"));
        assert_eq!(
            link.mailto.unwrap(),
            format!("mailto:leave@example.com?subject=unsubscribe%20{token}")
        );
    }

    #[test]
    fn a_bad_public_url_or_address_is_named() {
        for url in ["localhost:8080", "ftp://example.com", "not a url"] {
            let error = UnsubscribeLinks::new(key(), url, None).unwrap_err().to_string();
            assert!(error.contains("PUBLIC_URL"), "{error}");
        }
        let error = UnsubscribeLinks::new(key(), "http://localhost:8080", Some("nobody"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("UNSUBSCRIBE_MAILTO"), "{error}");
        assert!(UnsubscribeLinks::new(key(), "http://localhost:8080", Some(" ")).is_ok());
    }
}
