//! A product URL the feed is pushed to: checked at start (absolute `http`/`https` with a
//! host), named by an id derived from the whole URL, shown without what may be a credential.

use reqwest::Url;
use sha2::{Digest, Sha256};

use crate::error::PushError;

/// One push destination. `Debug` and [`PushEndpoint::display`] leave out the user info and
/// the query (where tokens live); the id tells apart URLs that differ only there.
#[derive(Clone, PartialEq, Eq)]
pub struct PushEndpoint {
    url: Url,
    id: String,
    display: String,
}

impl std::fmt::Debug for PushEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEndpoint")
            .field("id", &self.id)
            .field("display", &self.display)
            .finish()
    }
}

impl PushEndpoint {
    /// Reads `url`: absolute, `http` or `https`, with a host, no fragment.
    pub fn parse(url: &str) -> Result<Self, PushError> {
        let url = Url::parse(url.trim())
            .map_err(|e| PushError::InvalidUrl(format!("is not an absolute URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PushError::InvalidUrl(format!(
                "has scheme {:?}; only http and https are pushed to",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(PushError::InvalidUrl("has no host".to_owned()));
        }
        if url.fragment().is_some() {
            return Err(PushError::InvalidUrl(
                "has a #fragment, which is never sent".to_owned(),
            ));
        }
        let digest = Sha256::digest(url.as_str().as_bytes());
        let id = format!("ep_{}", &hex::encode(digest)[..24]);
        let mut shown = url.clone();
        // Infallible on http(s) URLs with a host.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        let display = shown.to_string();
        Ok(Self { url, id, display })
    }

    /// The id it is stored under (`ep_` and 24 hex digits of the URL's SHA-256).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The URL without user info or query: what logs and `billingctl` show.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The whole URL requests go to.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }
}
