//! Rich content: `POST /content` reserves it, the upload and download URLs — served by the
//! emulator itself instead of cloud storage — move the bytes, and `GET /content/{uuid}` (the
//! `refresh_url`) hands out a fresh download URL.
//!
//! Upload and download URLs carry their own random secrets, unrelated to the content ID that
//! every participant sees, because the SDK calls them without authentication (as it would
//! a signed cloud-storage URL). So an upload's secret is checked, and its size learnt,
//! before any of its body is read; a body longer than that is refused unread. Downloads are
//! served as attachments, never sniffed: the bytes are whatever a user uploaded.
//! The caps and the expiry of content are in `content_store.rs`.

use actix_web::http::StatusCode;
use actix_web::http::header::{
    CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{json, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::AppId;

pub async fn post_content(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
) -> Result<HttpResponse, LayerError> {
    let (mime_type, declared_size) = upload_headers(&req, emulator.settings().max_content_bytes)?;
    let view =
        emulator
            .world(caller.app)?
            .create_content(&caller.user_id, mime_type, declared_size)?;
    let mut response = json(StatusCode::CREATED, &view);
    if let Some(Ok(location)) = view["id"].as_str().map(|id| {
        HeaderValue::from_str(&format!(
            "{}/{}",
            emulator.base_url(),
            id.trim_start_matches("layer:///")
        ))
    }) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// `Upload-Content-Type` (a MIME type; default `application/octet-stream`) and
/// `Upload-Content-Length` (at most `limit`, if given) of a content reservation.
pub fn upload_headers(
    req: &HttpRequest,
    limit: usize,
) -> Result<(String, Option<u64>), LayerError> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mime_type = header("upload-content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    if !mime_type.contains('/') {
        return Err(LayerError::invalid_property(
            "Upload-Content-Type",
            format!("Upload-Content-Type {mime_type:?} is not a MIME type"),
        ));
    }
    let declared_size = match header("upload-content-length") {
        None => None,
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if n <= limit as u64 => Some(n),
            Ok(n) => {
                return Err(LayerError::invalid_property(
                    "Upload-Content-Length",
                    format!("{n} bytes is more than this emulator's limit of {limit}"),
                ));
            }
            Err(_) => {
                return Err(LayerError::invalid_property(
                    "Upload-Content-Length",
                    "Upload-Content-Length must be a number of bytes",
                ));
            }
        },
    };
    Ok((mime_type, declared_size))
}

/// `PUT {upload_url}`: the bytes — exactly as many as `POST /content` declared, and once.
pub async fn put_upload(
    emulator: web::Data<MockLayer>,
    secret: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    // Which app's upload it is, and how long it may be, before a byte is read: the URL is
    // unauthenticated, so a wrong one must cost nothing. The URL is claimed now, so a
    // second `PUT` to it is refused before its body is read too.
    let mut target = None;
    for (app, mut world) in emulator.worlds() {
        let now = world.now_ms();
        if let Some(room) = world.content.claim_upload(&secret, now)? {
            target = Some((app, room));
            break;
        }
    }
    let Some((app, room)) = target else {
        return Err(LayerError::not_found("there is no upload at this URL"));
    };
    let mut claim = UploadClaim {
        emulator: emulator.clone(),
        app,
        secret: Some(secret.into_inner()),
    };
    let too_long = || {
        LayerError::invalid_request(format!(
            "this upload takes at most {room} bytes (its Upload-Content-Length, or \
             mock_layer.max_content_bytes)"
        ))
    };
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > room) {
        return Err(too_long());
    }
    let limit = usize::try_from(room).unwrap_or(usize::MAX);
    let bytes = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| too_long())?
        .map_err(|e| LayerError::invalid_request(format!("the upload could not be read: {e}")))?;
    claim.store(bytes)
}

/// A `PUT`'s hold on its upload URL. Dropped without storing — the upload was refused, or
/// the client went away while its body was read — it gives the URL back.
struct UploadClaim {
    emulator: web::Data<MockLayer>,
    app: AppId,
    /// The upload's secret while the claim is held.
    secret: Option<String>,
}

impl UploadClaim {
    fn store(&mut self, bytes: web::Bytes) -> Result<HttpResponse, LayerError> {
        let mut world = self.emulator.world(self.app)?;
        // `store_upload` ends the claim whatever it answers, under the same lock.
        let Some(secret) = self.secret.take() else {
            return Err(LayerError::internal("an upload claim was used twice"));
        };
        world.content.store_upload(&secret, bytes)?;
        Ok(HttpResponse::Ok().finish())
    }
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        if let Some(secret) = &self.secret
            && let Ok(mut world) = self.emulator.world(self.app)
        {
            world.content.release_upload(secret);
        }
    }
}

/// `GET {download_url}`: the bytes with the type they were uploaded as, as an attachment.
pub async fn get_download(
    req: HttpRequest,
    emulator: web::Data<MockLayer>,
    secret: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    for (_, world) in emulator.worlds() {
        if let Some((mime_type, bytes)) = world.content.download(&secret) {
            // Uploaded bytes may imitate anything, a bare HTTP refusal included.
            crate::http_server::write_verbatim(&req);
            let content_type = HeaderValue::from_str(mime_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            return Ok(HttpResponse::Ok()
                .insert_header((CONTENT_TYPE, content_type))
                .insert_header((X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
                .insert_header((CONTENT_DISPOSITION, HeaderValue::from_static("attachment")))
                .body(bytes));
        }
    }
    Err(LayerError::not_found("there is no content at this URL"))
}

pub async fn get_content(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "content")?;
    let view = emulator
        .world(caller.app)?
        .refresh_content(&caller.user_id, &uuid)?;
    Ok(json(StatusCode::OK, &view))
}
