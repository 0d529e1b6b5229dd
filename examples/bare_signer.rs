//! The floor of `POST /identity_tokens`, for `scripts/bench-token-issuance`: the same HTTP
//! stack (actix-web, as many workers as the server), the same claims and the same signing code as the
//! server, and nothing else — no session, no nonce ledger, no database, no middleware.
//!
//! It is not safe to run as an identity provider: it signs whatever nonce it is sent, for one
//! made-up user, as often as it is asked. Its only use is as a limit measured in the same run
//! as the server: what a token costs over HTTP when the two database round trips that keep a
//! nonce single-use and a revoked session dead cost nothing.
//!
//!     cargo run --release --example bare_signer -- ADDRESS KEYS_DIR
//!
//! Listens on ADDRESS (`127.0.0.1:8099`, say) and keeps a development key under KEYS_DIR.

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, post, web};
use layer_idp::config::Settings;
use layer_idp::idp::keys::KeyRing;
use layer_idp::idp::tokens::IdentityClaims;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct TokenRequest {
    nonce: String,
}

#[derive(Serialize)]
struct TokenBody {
    identity_token: String,
}

#[post("/identity_tokens")]
async fn sign(keys: web::Data<Arc<KeyRing>>, request: web::Json<TokenRequest>) -> HttpResponse {
    // Fixed claims of the size a real user's have (a UUID and a display name).
    let claims = IdentityClaims {
        iss: keys.provider_id(),
        prn: "7d2e2e5c-3a49-4a3e-9a34-6a4c0e3c5b1f",
        iat: 1_700_000_000,
        exp: 1_700_000_600,
        nce: &request.nonce,
        first_name: None,
        last_name: None,
        display_name: Some("Bench User"),
        avatar_url: Some("https://example.com/a.png"),
    };
    let signed = serde_json::to_vec(&claims)
        .ok()
        .and_then(|claims| keys.active().sign_json(&claims).ok());
    match signed {
        Some(identity_token) => HttpResponse::Ok().json(TokenBody { identity_token }),
        None => HttpResponse::InternalServerError().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, keys_dir] = &args[..] else {
        eprintln!("usage: bare_signer ADDRESS KEYS_DIR");
        std::process::exit(2);
    };
    let settings = Settings {
        keys_dir: keys_dir.into(),
        ..Settings::default()
    };
    let keys = Arc::new(KeyRing::load_single(&settings).map_err(std::io::Error::other)?);
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(keys.clone()))
            .service(sign)
    })
    .workers(layer_idp::startup::worker_count(&settings))
    .bind(address.as_str())?
    .run()
    .await
}
