//! Rich content of one app: the bytes, the secrets of their upload and download URLs, and
//! how much of the emulator's memory they may take.
//!
//! Both URLs are bearer secrets the SDK calls without authentication, so the upload can be
//! looked up — and refused — *before* a byte of its body is read, and is read only up to the
//! size `POST /content` declared. Secrets are found through maps, not by scanning.
//!
//! What content may hold is capped per user and per app (`[mock_layer]`
//! `max_content_bytes_per_user`, `max_content_bytes_per_app`): an item counts from
//! `POST /content` on, for the size it declared (or the largest upload allowed, when it
//! declared none), and at least [`MIN_CHARGE`], so empty reservations cannot pile up
//! either. Content no message uses expires after `content_upload_ttl_secs`; content whose
//! message is deleted for everyone, or whose conversation is (or was left by everyone), is
//! freed with it.
//!
//! An upload URL takes one upload at a time and one in all: a `PUT` claims the URL before
//! its body is read, so a second concurrent `PUT` is refused (`409 conflict`) without
//! reading its body, and the claim is released if the first one fails. Once bytes are stored (or a message uses the content) a
//! further `PUT` is refused with `403 access_denied`, so what an item counts for is settled
//! once — an undeclared upload gives back, when it lands, the part of its reservation it
//! did not use — and the sums below never need to go up again. They are kept with
//! saturating arithmetic all the same: a bookkeeping slip must not take a worker down.

use std::collections::{HashMap, VecDeque};

use actix_web::web::Bytes;
use uuid::Uuid;

use super::error::{ErrorKind, LayerError};
use super::ids::random_token;

/// What one item counts for at least: its bookkeeping is not free.
pub const MIN_CHARGE: u64 = 1024;

/// What the configuration allows.
#[derive(Debug, Clone, Copy)]
pub struct ContentLimits {
    /// One upload.
    pub max_item_bytes: u64,
    pub max_bytes_per_user: u64,
    pub max_bytes_per_app: u64,
    /// How long content may wait for a message to use it.
    pub unattached_ttl_ms: i64,
}

/// Rich content: uploaded with a secret URL, served with another.
#[derive(Debug, Clone)]
pub struct Content {
    pub uuid: Uuid,
    pub owner: String,
    pub mime_type: String,
    /// `Upload-Content-Length` from `POST /content`; the upload must be exactly this long.
    pub declared_size: Option<u64>,
    /// The upload, once it has landed; there is only one.
    pub bytes: Option<Bytes>,
    pub upload_secret: String,
    pub download_secret: String,
    /// The message that uses it; uploads are refused from then on.
    pub attached_to: Option<Uuid>,
    /// A `PUT` is reading its body: another one is refused before its body is read.
    receiving: bool,
    /// What it counts for against the caps.
    charge: u64,
}

impl Content {
    /// Whether an upload may still land: not once a message uses it, nor a second time.
    fn check_uploadable(&self) -> Result<(), LayerError> {
        if self.attached_to.is_some() {
            return Err(LayerError::access_denied(
                "this content belongs to a message already; it cannot be replaced",
            ));
        }
        if self.bytes.is_some() {
            return Err(LayerError::access_denied(
                "this content has been uploaded already; an upload URL takes one upload \
                 (POST /content for new content)",
            ));
        }
        if self.receiving {
            return Err(LayerError::new(
                ErrorKind::Conflict,
                "an upload to this URL is under way; an upload URL takes one upload at a time",
            ));
        }
        Ok(())
    }
}

/// Uploaded content a message uses, as an export keeps it.
pub struct RestoredContent {
    pub uuid: Uuid,
    pub owner: String,
    pub mime_type: String,
    pub declared_size: Option<u64>,
    pub bytes: Bytes,
    pub upload_secret: String,
    pub download_secret: String,
    pub attached_to: Uuid,
}

pub struct ContentStore {
    items: HashMap<Uuid, Content>,
    by_upload_secret: HashMap<String, Uuid>,
    by_download_secret: HashMap<String, Uuid>,
    /// Every item by creation time (creation order): expiry looks at the front only.
    by_age: VecDeque<(i64, Uuid)>,
    charged_by_user: HashMap<String, u64>,
    charged: u64,
    limits: ContentLimits,
}

impl ContentStore {
    pub fn new(limits: ContentLimits) -> Self {
        Self {
            items: HashMap::new(),
            by_upload_secret: HashMap::new(),
            by_download_secret: HashMap::new(),
            by_age: VecDeque::new(),
            charged_by_user: HashMap::new(),
            charged: 0,
            limits,
        }
    }

    pub fn limits(&self) -> ContentLimits {
        self.limits
    }

    pub fn get(&self, uuid: &Uuid) -> Option<&Content> {
        self.items.get(uuid)
    }

    /// `POST /content`: reserves room for the upload within the caps.
    pub fn create(
        &mut self,
        owner: &str,
        mime_type: String,
        declared_size: Option<u64>,
        now_ms: i64,
    ) -> Result<&Content, LayerError> {
        self.expire(now_ms);
        let charge = declared_size
            .unwrap_or(self.limits.max_item_bytes)
            .max(MIN_CHARGE);
        let user_charged = self.charged_by_user.get(owner).copied().unwrap_or(0);
        if user_charged.saturating_add(charge) > self.limits.max_bytes_per_user {
            return Err(LayerError::rate_limit_exceeded(format!(
                "{owner} has {user_charged} bytes of rich content here already; with \
                 {charge} more it would pass mock_layer.max_content_bytes_per_user \
                 ({}). Content not used by a message expires; deleting a message frees its \
                 content",
                self.limits.max_bytes_per_user
            )));
        }
        if self.charged.saturating_add(charge) > self.limits.max_bytes_per_app {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app holds {} bytes of rich content already; with {charge} more it would \
                 pass mock_layer.max_content_bytes_per_app ({})",
                self.charged, self.limits.max_bytes_per_app
            )));
        }
        let uuid = Uuid::new_v4();
        let content = Content {
            uuid,
            owner: owner.to_owned(),
            mime_type,
            declared_size,
            bytes: None,
            upload_secret: random_token(24),
            download_secret: random_token(24),
            attached_to: None,
            receiving: false,
            charge,
        };
        self.by_upload_secret
            .insert(content.upload_secret.clone(), uuid);
        self.by_download_secret
            .insert(content.download_secret.clone(), uuid);
        self.by_age.push_back((now_ms, uuid));
        let user_charged = self.charged_by_user.entry(owner.to_owned()).or_default();
        *user_charged = user_charged.saturating_add(charge);
        self.charged = self.charged.saturating_add(charge);
        Ok(self.items.entry(uuid).or_insert(content))
    }

    /// Claims the upload at `secret` for a `PUT` about to read its body, and says how many
    /// bytes it may have. `None` if there is no such upload (or it expired); an error if it
    /// may take none, or another `PUT` holds the claim. The claim ends with
    /// [`store_upload`](Self::store_upload) or [`release_upload`](Self::release_upload).
    pub fn claim_upload(&mut self, secret: &str, now_ms: i64) -> Result<Option<u64>, LayerError> {
        self.expire(now_ms);
        let max_item_bytes = self.limits.max_item_bytes;
        let Some(content) = self.upload_mut(secret) else {
            return Ok(None);
        };
        content.check_uploadable()?;
        content.receiving = true;
        Ok(Some(content.declared_size.unwrap_or(max_item_bytes)))
    }

    /// Gives up a claim whose upload did not land (refused, or its client went away).
    pub fn release_upload(&mut self, secret: &str) {
        if let Some(content) = self.upload_mut(secret) {
            content.receiving = false;
        }
    }

    fn upload_mut(&mut self, secret: &str) -> Option<&mut Content> {
        let uuid = self.by_upload_secret.get(secret)?;
        self.items.get_mut(uuid)
    }

    /// `PUT {upload_url}`, once the body is read, by the holder of the claim. Checked again:
    /// a message may have taken the content while the body was read.
    pub fn store_upload(&mut self, secret: &str, bytes: Bytes) -> Result<(), LayerError> {
        let Some(content) = self
            .by_upload_secret
            .get(secret)
            .and_then(|uuid| self.items.get_mut(uuid))
        else {
            return Err(LayerError::not_found("there is no upload at this URL"));
        };
        content.receiving = false;
        content.check_uploadable()?;
        let size = bytes.len() as u64;
        match content.declared_size {
            Some(declared) if declared != size => {
                return Err(LayerError::invalid_request(format!(
                    "the upload is {size} bytes, but POST /content declared \
                     Upload-Content-Length {declared}"
                )));
            }
            Some(_) => {}
            // Reserved at the largest size allowed (and the body was read no further); now
            // that the size is known, the rest of the reservation is given back. This runs
            // once per item: a stored upload is never replaced.
            None => {
                let charge = size.max(MIN_CHARGE).min(content.charge);
                let freed = content.charge.saturating_sub(charge);
                content.charge = charge;
                self.charged = self.charged.saturating_sub(freed);
                if let Some(user) = self.charged_by_user.get_mut(&content.owner) {
                    *user = user.saturating_sub(freed);
                }
            }
        }
        content.bytes = Some(bytes);
        Ok(())
    }

    /// `GET {download_url}`: the type and the bytes.
    pub fn download(&self, secret: &str) -> Option<(&str, Bytes)> {
        let content = self.items.get(self.by_download_secret.get(secret)?)?;
        Some((&content.mime_type, content.bytes.clone()?))
    }

    /// A message uses it from now on: it no longer expires, and cannot be replaced.
    pub fn attach(&mut self, uuid: &Uuid, message: Uuid) {
        if let Some(content) = self.items.get_mut(uuid) {
            content.attached_to = Some(message);
        }
    }

    /// Frees an item and its URLs (its message or conversation is gone for everyone).
    pub fn remove(&mut self, uuid: &Uuid) {
        let Some(content) = self.items.remove(uuid) else {
            return;
        };
        self.by_upload_secret.remove(&content.upload_secret);
        self.by_download_secret.remove(&content.download_secret);
        self.charged = self.charged.saturating_sub(content.charge);
        if let Some(user) = self.charged_by_user.get_mut(&content.owner) {
            *user = user.saturating_sub(content.charge);
            if *user == 0 {
                self.charged_by_user.remove(&content.owner);
            }
        }
        // Its `by_age` entry stays until it reaches the front, where a missing item is
        // skipped: removing it from the middle of the queue would be a scan.
    }

    /// Every item, in no particular order (for `GET /_mock/export`).
    pub fn items(&self) -> impl Iterator<Item = &Content> {
        self.items.values()
    }

    /// Puts back uploaded content a message uses, from `POST /_mock/import`, within the
    /// caps. Its URLs keep their secrets, so download URLs handed out before still work.
    pub fn restore(&mut self, item: RestoredContent, now_ms: i64) -> Result<(), LayerError> {
        let size = item.bytes.len() as u64;
        let charge = size.max(MIN_CHARGE);
        if size > self.limits.max_item_bytes {
            return Err(LayerError::invalid_request(format!(
                "content {} is {size} bytes, over mock_layer.max_content_bytes ({})",
                item.uuid, self.limits.max_item_bytes
            )));
        }
        let user = self.charged_by_user.get(&item.owner).copied().unwrap_or(0);
        if user.saturating_add(charge) > self.limits.max_bytes_per_user
            || self.charged.saturating_add(charge) > self.limits.max_bytes_per_app
        {
            return Err(LayerError::invalid_request(format!(
                "content {} would pass mock_layer.max_content_bytes_per_user or \
                 mock_layer.max_content_bytes_per_app",
                item.uuid
            )));
        }
        if self.items.contains_key(&item.uuid)
            || self.by_upload_secret.contains_key(&item.upload_secret)
            || self.by_download_secret.contains_key(&item.download_secret)
        {
            return Err(LayerError::invalid_request(format!(
                "content {} appears twice, or shares a URL secret",
                item.uuid
            )));
        }
        self.by_upload_secret
            .insert(item.upload_secret.clone(), item.uuid);
        self.by_download_secret
            .insert(item.download_secret.clone(), item.uuid);
        self.by_age.push_back((now_ms, item.uuid));
        *self.charged_by_user.entry(item.owner.clone()).or_default() += charge;
        self.charged = self.charged.saturating_add(charge);
        self.items.insert(
            item.uuid,
            Content {
                uuid: item.uuid,
                owner: item.owner,
                mime_type: item.mime_type,
                declared_size: item.declared_size,
                bytes: Some(item.bytes),
                upload_secret: item.upload_secret,
                download_secret: item.download_secret,
                attached_to: Some(item.attached_to),
                receiving: false,
                charge,
            },
        );
        Ok(())
    }

    /// Frees content that no message took within its time.
    fn expire(&mut self, now_ms: i64) {
        while let Some(&(created_ms, uuid)) = self.by_age.front() {
            // Saturating: `content_upload_ttl_secs` may be huge ("never expire").
            if created_ms.saturating_add(self.limits.unattached_ttl_ms) > now_ms {
                break;
            }
            self.by_age.pop_front();
            if self
                .items
                .get(&uuid)
                .is_some_and(|c| c.attached_to.is_none())
            {
                self.remove(&uuid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> ContentStore {
        ContentStore::new(ContentLimits {
            max_item_bytes: 10_000,
            max_bytes_per_user: 20_000,
            max_bytes_per_app: 30_000,
            unattached_ttl_ms: 1_000,
        })
    }

    #[test]
    fn reservations_count_against_the_caps_and_are_given_back() {
        let mut store = store();
        let first = store
            .create("alice", "a/b".into(), Some(10_000), 0)
            .unwrap()
            .uuid;
        let second = store
            .create("alice", "a/b".into(), Some(10_000), 0)
            .unwrap()
            .uuid;
        let err = store.create("alice", "a/b".into(), Some(1), 0).unwrap_err();
        assert_eq!(err.kind.id(), "rate_limit_exceeded");
        store.create("bob", "a/b".into(), Some(10_000), 0).unwrap();
        assert!(
            store.create("bob", "a/b".into(), Some(1), 0).is_err(),
            "the app is full"
        );
        store.remove(&first);
        store.attach(&second, Uuid::new_v4());
        // Expiry frees only what no message uses.
        store.create("carol", "a/b".into(), None, 500).unwrap();
        assert!(store.create("carol", "a/b".into(), None, 500).is_err());
        store
            .create("alice", "a/b".into(), Some(9_000), 2_000)
            .unwrap();
        assert!(store.get(&second).is_some());
    }

    #[test]
    fn an_upload_is_checked_before_its_body_is_read_and_must_match_the_declared_size() {
        let mut store = store();
        let content = store.create("alice", "a/b".into(), Some(3), 0).unwrap();
        let (uuid, upload, download) = (
            content.uuid,
            content.upload_secret.clone(),
            content.download_secret.clone(),
        );
        assert_eq!(store.claim_upload("nope", 0).unwrap(), None);
        assert_eq!(store.claim_upload(&upload, 0).unwrap(), Some(3));
        assert!(
            store
                .store_upload(&upload, Bytes::from_static(b"ab"))
                .is_err()
        );
        assert_eq!(store.claim_upload(&upload, 0).unwrap(), Some(3));
        store
            .store_upload(&upload, Bytes::from_static(b"abc"))
            .unwrap();
        assert_eq!(store.download(&download).unwrap().1, "abc");
        store.attach(&uuid, Uuid::new_v4());
        assert!(
            store.claim_upload(&upload, 0).is_err(),
            "attached: not replaceable"
        );
        store.remove(&uuid);
        assert!(store.download(&download).is_none());
        assert_eq!(store.claim_upload(&upload, 0).unwrap(), None);
    }

    #[test]
    fn a_second_put_is_refused_while_the_first_reads_its_body() {
        let mut store = store();
        let upload = store
            .create("alice", "a/b".into(), Some(3), 0)
            .unwrap()
            .upload_secret
            .clone();
        assert_eq!(store.claim_upload(&upload, 0).unwrap(), Some(3));
        let err = store.claim_upload(&upload, 0).unwrap_err();
        assert_eq!(err.kind.id(), "conflict");
        // The first one fails (its client went away): the URL takes an upload again.
        store.release_upload(&upload);
        assert_eq!(store.claim_upload(&upload, 0).unwrap(), Some(3));
        store
            .store_upload(&upload, Bytes::from_static(b"abc"))
            .unwrap();
        assert_eq!(
            store.claim_upload(&upload, 0).unwrap_err().kind.id(),
            "access_denied"
        );
    }

    #[test]
    fn an_upload_url_takes_one_upload_and_an_undeclared_one_counts_what_landed() {
        let mut store = store();
        let content = store.create("alice", "a/b".into(), None, 0).unwrap();
        let (uuid, upload) = (content.uuid, content.upload_secret.clone());
        assert_eq!(store.charged, 10_000, "reserved at the largest upload");
        store
            .store_upload(&upload, Bytes::from(vec![0; 2_000]))
            .unwrap();
        assert_eq!(store.charged, 2_000);
        assert_eq!(store.charged_by_user["alice"], 2_000);
        // Neither the check before the body nor the store after it lets a second one in.
        let err = store.claim_upload(&upload, 0).unwrap_err();
        assert_eq!(err.kind.id(), "access_denied");
        let err = store
            .store_upload(&upload, Bytes::from(vec![0; 9_000]))
            .unwrap_err();
        assert_eq!(err.kind.id(), "access_denied");
        assert_eq!(
            store.get(&uuid).unwrap().bytes.as_ref().unwrap().len(),
            2_000
        );
        assert_eq!(store.charged, 2_000, "the refused upload changed nothing");
        store.remove(&uuid);
        assert_eq!(store.charged, 0);
        assert!(store.charged_by_user.is_empty());
    }

    #[test]
    fn a_huge_time_to_live_means_never_expiring() {
        let mut store = ContentStore::new(ContentLimits {
            unattached_ttl_ms: i64::MAX,
            ..store().limits()
        });
        let first = store
            .create("alice", "a/b".into(), Some(1), 1_000)
            .unwrap()
            .uuid;
        store
            .create("alice", "a/b".into(), Some(1), i64::MAX / 2)
            .unwrap();
        assert!(store.get(&first).is_some());
    }
}
