//! The identity token, checked by an implementation other than the one that signed it: the
//! `openssl` command verifies the RS256 signature over the signing input with the public key
//! taken from the JWKS endpoint.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{
    KEY_ID, PROVIDER_ID, SECOND_KEY_ID, jwt_part, second_key, spawn_app, spawn_app_with,
};

/// Builds a PEM public key from a JWK's `n` and `e` with `openssl asn1parse -genconf` (an
/// RSAPublicKey SEQUENCE) and `openssl rsa`, so no code of ours touches the key.
pub(crate) fn openssl_public_key(jwk: &Value, dir: &Path) -> std::path::PathBuf {
    let hex = |field: &str| -> String {
        URL_SAFE_NO_PAD
            .decode(jwk[field].as_str().unwrap())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    };
    let conf = dir.join("rsa-public.cnf");
    std::fs::write(
        &conf,
        format!(
            "asn1=SEQUENCE:rsa_key\n[rsa_key]\nn=INTEGER:0x{}\ne=INTEGER:0x{}\n",
            hex("n"),
            hex("e")
        ),
    )
    .unwrap();
    let der = dir.join("rsa-public.der");
    let pem = dir.join("rsa-public.pem");
    let status = Command::new("openssl")
        .args(["asn1parse", "-noout", "-genconf"])
        .arg(&conf)
        .arg("-out")
        .arg(&der)
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    let status = Command::new("openssl")
        .args([
            "rsa",
            "-RSAPublicKey_in",
            "-inform",
            "DER",
            "-pubout",
            "-in",
        ])
        .arg(&der)
        .arg("-out")
        .arg(&pem)
        .status()
        .unwrap();
    assert!(status.success());
    pem
}

/// True if `openssl dgst -sha256 -verify` accepts the token's signature.
pub(crate) fn openssl_verifies(token: &str, jwk: &Value) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let pem = openssl_public_key(jwk, dir.path());
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let input = dir.path().join("input");
    let sig = dir.path().join("signature");
    std::fs::write(&input, signing_input).unwrap();
    std::fs::write(&sig, URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&input)
        .output()
        .unwrap();
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains("Verified OK")
}

pub(crate) fn jwk_for<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("{kid} is not in the JWKS: {jwks}"))
}

#[tokio::test]
async fn an_identity_token_verifies_with_openssl_and_carries_exactly_layers_header_and_claims() {
    let app = spawn_app().await;
    let user = app
        .sign_up_with(json!({
            "email": "ada@example.com",
            "password": "correct horse battery",
            "display_name": "Ada L.",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "avatar_url": "https://example.com/ada.png"
        }))
        .await;
    // A Layer nonce is base64: '+', '/' and '=' must come back byte for byte.
    let nonce = "fJ8+/sQ0=ZpX9Yw2kT4mR7vB1nH6cD3eG5aL8uI0o=";
    let before = layer_idp::clock::unix_now();
    let token = app
        .identity_token("ada@example.com", "correct horse battery", nonce)
        .await;
    let after = layer_idp::clock::unix_now();

    let header = jwt_part(&token, 0);
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "RS256", "cty": "layer-eit;v=1", "kid": KEY_ID})
    );
    let claims = jwt_part(&token, 1);
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "avatar_url",
            "display_name",
            "exp",
            "first_name",
            "iat",
            "iss",
            "last_name",
            "nce",
            "prn"
        ]
    );
    assert_eq!(claims["iss"], PROVIDER_ID);
    assert_eq!(claims["prn"], user["id"]);
    assert!(claims["prn"].is_string());
    assert_eq!(claims["nce"], nonce);
    assert_eq!(claims["display_name"], "Ada L.");
    assert_eq!(claims["first_name"], "Ada");
    assert_eq!(claims["last_name"], "Lovelace");
    assert_eq!(claims["avatar_url"], "https://example.com/ada.png");
    let iat = claims["iat"].as_i64().expect("iat is an integer");
    let exp = claims["exp"].as_i64().expect("exp is an integer");
    assert!(
        before <= iat && iat <= after,
        "iat {iat} is not now (seconds, UTC)"
    );
    assert_eq!(exp - iat, 120, "default lifetime");

    let jwks = app.get_jwks().await;
    assert!(openssl_verifies(&token, jwk_for(&jwks, KEY_ID)));
    // The check can fail: a token with one changed claim byte does not verify.
    let (head, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut forged_claims = claims.clone();
    forged_claims["prn"] = json!("mallory");
    let forged = format!(
        "{head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap())
    );
    assert_ne!(payload, forged.split('.').nth(1).unwrap());
    assert!(!openssl_verifies(&forged, jwk_for(&jwks, KEY_ID)));
}

#[tokio::test]
async fn profile_claims_are_left_out_when_not_set() {
    let app = spawn_app().await;
    app.sign_up("bare@example.com", "correct horse battery")
        .await;
    let token = app
        .identity_token("bare@example.com", "correct horse battery", "n1")
        .await;
    let claims = jwt_part(&token, 1);
    let mut keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["exp", "iat", "iss", "nce", "prn"]);
}

#[tokio::test]
async fn the_token_lifetime_is_configurable() {
    let app = spawn_app_with(|s| s.signing.token_lifetime_secs = 45).await;
    app.sign_up("ttl@example.com", "correct horse battery")
        .await;
    let token = app
        .identity_token("ttl@example.com", "correct horse battery", "n1")
        .await;
    let claims = jwt_part(&token, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        45
    );
}

#[tokio::test]
async fn a_nonce_is_never_signed_twice_for_the_same_or_another_user() {
    let app = spawn_app().await;
    app.sign_up("one@example.com", "correct horse battery")
        .await;
    app.sign_up("two@example.com", "correct horse battery")
        .await;
    app.identity_token("one@example.com", "correct horse battery", "nonce-A")
        .await;

    for email in ["one@example.com", "two@example.com"] {
        let response = app
            .post_authenticate(
                &json!({"email": email, "password": "correct horse battery", "nonce": "nonce-A"}),
            )
            .await;
        assert_eq!(response.status(), 409);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "nonce_already_signed");
    }
    // The session flow obeys the same rule.
    let session = app
        .session_token("two@example.com", "correct horse battery")
        .await;
    let response = app.post_identity_tokens(&session, "nonce-A").await;
    assert_eq!(response.status(), 409);
    // A different nonce is fine.
    assert_eq!(
        app.post_identity_tokens(&session, "nonce-B").await.status(),
        200
    );
}

#[tokio::test]
async fn a_rotated_in_key_signs_and_verifies_with_the_jwks_while_the_old_key_stays_published() {
    let app = spawn_app().await;
    app.sign_up("rot@example.com", "correct horse battery")
        .await;
    let old_token = app
        .identity_token("rot@example.com", "correct horse battery", "before")
        .await;
    let old_jwks = app.get_jwks().await;
    assert_eq!(old_jwks["keys"].as_array().unwrap().len(), 1);

    let dir = app.dir.path().to_path_buf();
    let app = app
        .restart_with(|s| {
            s.signing.keys.push(second_key(&dir));
            s.signing.active_key_id = Some(SECOND_KEY_ID.to_owned());
        })
        .await;
    let token = app
        .identity_token("rot@example.com", "correct horse battery", "after")
        .await;
    assert_eq!(jwt_part(&token, 0)["kid"], SECOND_KEY_ID);

    let jwks = app.get_jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [KEY_ID, SECOND_KEY_ID]);
    assert!(openssl_verifies(&token, jwk_for(&jwks, SECOND_KEY_ID)));
    assert!(!openssl_verifies(&token, jwk_for(&jwks, KEY_ID)));
    // The old key is published unchanged, so tokens it signed still verify.
    assert_eq!(jwk_for(&jwks, KEY_ID), jwk_for(&old_jwks, KEY_ID));
    assert!(openssl_verifies(&old_token, jwk_for(&jwks, KEY_ID)));
}

#[tokio::test]
async fn a_retired_key_given_only_as_a_public_key_is_published_but_never_signs() {
    let app = spawn_app().await;
    let dir = app.dir.path().to_path_buf();
    let jwks_before = app.get_jwks().await;
    // Retire the first key: keep only its public half, sign with the second.
    let public_pem =
        std::fs::read_to_string(openssl_public_key(jwk_for(&jwks_before, KEY_ID), &dir)).unwrap();
    let public_file = dir.join("retired.public.pem");
    std::fs::write(&public_file, public_pem).unwrap();
    let app = app
        .restart_with(|s| {
            s.signing.keys[0].private_key_file = None;
            s.signing.keys[0].public_key_file = Some(public_file);
            s.signing.keys.push(second_key(&dir));
        })
        .await;
    app.sign_up("ret@example.com", "correct horse battery")
        .await;
    let token = app
        .identity_token("ret@example.com", "correct horse battery", "n")
        .await;
    assert_eq!(jwt_part(&token, 0)["kid"], SECOND_KEY_ID);
    let jwks = app.get_jwks().await;
    assert_eq!(jwk_for(&jwks, KEY_ID), jwk_for(&jwks_before, KEY_ID));
}

#[tokio::test]
async fn concurrent_requests_for_one_nonce_get_exactly_one_token() {
    let app = spawn_app().await;
    app.sign_up("race@example.com", "correct horse battery")
        .await;
    let session = app
        .session_token("race@example.com", "correct horse battery")
        .await;
    // Mixed with distinct nonces, so the writer batches the duplicates together with others.
    let requests = (0..24).map(|i| {
        let nonce = if i % 2 == 0 {
            "contested".to_owned()
        } else {
            format!("distinct-{i}")
        };
        let app = &app;
        let session = session.clone();
        async move {
            (
                nonce.clone(),
                app.post_identity_tokens(&session, &nonce)
                    .await
                    .status()
                    .as_u16(),
            )
        }
    });
    let results = futures_util::future::join_all(requests).await;
    let contested: Vec<u16> = results
        .iter()
        .filter(|(n, _)| n == "contested")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(
        contested.iter().filter(|s| **s == 200).count(),
        1,
        "{contested:?}"
    );
    assert_eq!(
        contested.iter().filter(|s| **s == 409).count(),
        contested.len() - 1
    );
    assert!(
        results
            .iter()
            .filter(|(n, _)| n != "contested")
            .all(|(_, s)| *s == 200)
    );
}
