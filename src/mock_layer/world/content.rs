//! Rich content as the world sees it: upload reservations, refreshes, download URLs
//! (the store and its caps are in `content_store.rs`).

use super::*;

impl World {
    /// `POST /content`: the upload URL for content of `declared_size` bytes.
    pub fn create_content(
        &mut self,
        caller: &str,
        mime_type: String,
        declared_size: Option<u64>,
    ) -> Result<Value, LayerError> {
        let now = self.now_ms();
        let content = self.content.create(caller, mime_type, declared_size, now)?;
        Ok(json!({
            "id": object_id(Kind::Content, &content.uuid),
            "upload_url": format!("{}/content-upload/{}", self.base, content.upload_secret),
            "download_url": null,
            "expiration": null,
        }))
    }

    /// `GET /content/{uuid}` (the `refresh_url`): for its owner and for participants of the
    /// conversation whose message carries it.
    pub fn refresh_content(&mut self, caller: &str, uuid: &Uuid) -> Result<Value, LayerError> {
        let not_found = || {
            LayerError::not_found(format!(
                "there is no content {}",
                object_id(Kind::Content, uuid)
            ))
        };
        let content = self.content.get(uuid).ok_or_else(not_found)?;
        let allowed = content.owner == caller
            || content
                .attached_to
                .is_some_and(|m| self.message_for(caller, &m).is_ok());
        if !allowed {
            return Err(not_found());
        }
        let download_url = content.bytes.as_ref().map(|_| self.download_url(content));
        let expiration = self.now_ms().saturating_add(DOWNLOAD_URL_LIFETIME_MS);
        Ok(json!({
            "id": object_id(Kind::Content, uuid),
            "download_url": download_url,
            "expiration": iso_ms(expiration),
            "upload_url": null,
        }))
    }

    pub fn download_url(&self, content: &Content) -> String {
        format!("{}/content-download/{}", self.base, content.download_secret)
    }
}
