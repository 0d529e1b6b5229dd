//! The authentication challenge: nonces, identity-token validation, sessions, 401s.

use serde_json::{Value, json};

use super::helpers::*;

async fn refusal(emulator: &Emulator, token: &str, app: &str) -> Value {
    let response = emulator.post_session(token, app).await;
    assert_eq!(response.status(), 422);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "invalid_property");
    assert_eq!(body["code"], 105);
    assert_eq!(body["data"]["property"], "identity_token");
    body
}

#[tokio::test]
async fn ping_answers_200_with_no_body() {
    let emulator = spawn_emulator().await;
    let response = emulator
        .http
        .head(format!("{}/ping?client=3.4.18", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_valid_identity_token_buys_a_url_safe_session_and_provisions_the_identity() {
    let emulator = spawn_emulator().await;
    let session = emulator.login("alice").await;
    assert!(session.len() >= 22, "{session}");
    assert!(
        session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let me: Value = emulator
        .get("/identities/alice", &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], "layer:///identities/alice");
    assert_eq!(me["display_name"], "alice (display)");
    assert_eq!(me["url"], format!("{}/identities/alice", emulator.url));
    assert!(me["metadata"].is_object(), "a full identity has metadata");
}

#[tokio::test]
async fn a_nonce_buys_one_session_only() {
    let emulator = spawn_emulator().await;
    let nonce = emulator.nonce().await;
    let token = sign(&header(KID), &claims("alice", &nonce));
    assert_eq!(emulator.post_session(&token, STAGING).await.status(), 201);
    let body = refusal(&emulator, &token, STAGING).await;
    assert!(body["message"].as_str().unwrap().contains("nce"), "{body}");
}

#[tokio::test]
async fn every_algorithm_but_rs256_is_refused() {
    let emulator = spawn_emulator().await;
    for alg in ["none", "HS256", "RS512", "PS256", "ES256"] {
        let nonce = emulator.nonce().await;
        let mut h = header(KID);
        h["alg"] = alg.into();
        let body = refusal(&emulator, &sign(&h, &claims("alice", &nonce)), STAGING).await;
        assert!(
            body["message"].as_str().unwrap().contains("RS256"),
            "{alg}: {body}"
        );
    }
    // An unsigned token (`alg: none`, empty signature) too.
    let nonce = emulator.nonce().await;
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims("alice", &nonce))
    );
    refusal(&emulator, &unsigned, STAGING).await;
}

/// Changes a token's header and claims before signing.
type Tamper = Box<dyn Fn(&mut Value, &mut Value)>;

#[tokio::test]
async fn each_header_and_claim_rule_names_itself() {
    let emulator = spawn_emulator().await;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "kid",
            Box::new(|h, _| h["kid"] = "layer:///keys/unknown".into()),
        ),
        ("cty", Box::new(|h, _| h["cty"] = "JWT".into())),
        ("typ", Box::new(|h, _| h["typ"] = "XYZ".into())),
        (
            "iss",
            Box::new(|_, c| c["iss"] = "layer:///providers/other".into()),
        ),
        ("prn", Box::new(|_, c| c["prn"] = "".into())),
        ("prn", Box::new(|_, c| c["prn"] = 42.into())),
        ("expired", Box::new(|_, c| c["exp"] = 1_000.into())),
        (
            "iat",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
    ];
    for (rule, tamper) in cases {
        let nonce = emulator.nonce().await;
        let (mut h, mut c) = (header(KID), claims("alice", &nonce));
        tamper(&mut h, &mut c);
        let body = refusal(&emulator, &sign(&h, &c), STAGING).await;
        assert!(
            body["message"].as_str().unwrap().contains(rule),
            "{rule}: {body}"
        );
        // A refused token leaves its nonce usable.
        let good = sign(&header(KID), &claims("alice", &nonce));
        assert_eq!(
            emulator.post_session(&good, STAGING).await.status(),
            201,
            "{rule}"
        );
    }
}

#[tokio::test]
async fn a_signature_by_another_key_or_over_other_bytes_is_refused() {
    let emulator = spawn_emulator().await;
    let nonce = emulator.nonce().await;
    // Signed with the second key but naming the first.
    let forged = sign_raw(
        &header(KID).to_string(),
        &claims("alice", &nonce).to_string(),
        &keys().1,
    );
    let body = refusal(&emulator, &forged, STAGING).await;
    assert!(
        body["message"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    // A valid token whose claims were swapped for another user's.
    let token = sign(&header(KID), &claims("alice", &nonce));
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims("mallory", &nonce)),
        parts[2]
    );
    refusal(&emulator, &tampered, STAGING).await;
}

#[tokio::test]
async fn duplicate_members_malformed_parts_and_huge_tokens_are_refused() {
    let emulator = spawn_emulator().await;
    let nonce = emulator.nonce().await;
    let claims_json = claims("alice", &nonce).to_string();
    let dup_header = format!(
        r#"{{"typ":"JWT","alg":"RS256","alg":"RS256","cty":"layer-eit;v=1","kid":"{KID}"}}"#
    );
    let body = refusal(
        &emulator,
        &sign_raw(&dup_header, &claims_json, &keys().0),
        STAGING,
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("duplicate"),
        "{body}"
    );
    let dup_claims = claims_json.replacen('{', r#"{"prn":"mallory","#, 1);
    refusal(
        &emulator,
        &sign_raw(&header(KID).to_string(), &dup_claims, &keys().0),
        STAGING,
    )
    .await;
    for malformed in ["", "a.b", "a.b.c.d", "!!.??.##", "e30.e30.e30"] {
        refusal(&emulator, malformed, STAGING).await;
    }
    let huge = format!("{}.{}.sig", "a".repeat(10_000), "b".repeat(10_000));
    let body = refusal(&emulator, &huge, STAGING).await;
    assert!(
        body["message"].as_str().unwrap().contains("bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn a_key_registered_for_production_is_refused_for_staging_naming_both() {
    let emulator = spawn_emulator().await;
    let nonce = emulator.nonce().await;
    let token = sign_raw(
        &header(OTHER_KID).to_string(),
        &claims("alice", &nonce).to_string(),
        &keys().1,
    );
    let body = refusal(&emulator, &token, STAGING).await;
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(STAGING), "{message}");
    assert!(message.contains(PRODUCTION), "{message}");
    assert!(message.contains("mix-up"), "{message}");
    // The same token is good for the app its key belongs to.
    assert_eq!(
        emulator.post_session(&token, PRODUCTION).await.status(),
        201
    );
}

#[tokio::test]
async fn an_app_from_the_other_environment_is_named_in_the_refusal() {
    let emulator = spawn_emulator().await;
    let nonce = emulator.nonce().await;
    let token = sign(&header(KID), &claims("alice", &nonce));
    let wrong = STAGING.replace("staging", "production");
    let response = emulator.post_session(&token, &wrong).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "invalid_app_id");
    assert!(
        body["message"].as_str().unwrap().contains(STAGING),
        "{body}"
    );
    // The bare UUID of a served app is accepted.
    let bare = STAGING.rsplit('/').next().unwrap();
    assert_eq!(emulator.post_session(&token, bare).await.status(), 201);
}

#[tokio::test]
async fn staging_and_production_are_separate_worlds() {
    let emulator = spawn_emulator().await;
    let staging = emulator.login_to("alice", STAGING).await;
    let production = emulator.login_to("alice", PRODUCTION).await;
    let conversation = emulator.conversation(&staging, &["bob"]).await;
    let response = emulator.get(&path_of(&conversation), &production).await;
    assert_eq!(response.status(), 404);
    let list: Value = emulator
        .get("/conversations", &production)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn requests_without_a_live_session_get_a_401_with_a_usable_nonce() {
    let emulator = spawn_emulator().await;
    for authorization in [None, Some("Layer session-token=\"nope\""), Some("Bearer x")] {
        let mut request = emulator.http.get(format!("{}/conversations", emulator.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "authentication_required");
        assert_eq!(body["code"], 4);
        let nonce = body["data"]["nonce"].as_str().unwrap();
        let token = sign(&header(KID), &claims("alice", nonce));
        assert_eq!(emulator.post_session(&token, STAGING).await.status(), 201);
    }
}

#[tokio::test]
async fn single_quotes_around_the_session_token_are_accepted() {
    let emulator = spawn_emulator().await;
    let session = emulator.login("alice").await;
    let response = emulator
        .http
        .get(format!("{}/conversations", emulator.url))
        .header("authorization", format!("Layer session-token='{session}'"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_deleted_session_is_refused_and_its_socket_closes() {
    let emulator = spawn_emulator().await;
    let session = emulator.login("alice").await;
    let mut ws = emulator.ws(&session).await;
    let response = emulator
        .send(
            reqwest::Method::DELETE,
            &format!("/sessions/{session}"),
            &session,
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        emulator
            .get("/?action=validateConnectionForWebsocket", &session)
            .await
            .status(),
        401
    );
    assert!(ws.closed_with().await.is_some());
}

#[tokio::test]
async fn sessions_expire_after_the_configured_ttl() {
    // Sessions live on the app's clock: the test moves it rather than waiting.
    let emulator = spawn_with(|s| s.session_ttl_secs = 60).await;
    let session = emulator.login("alice").await;
    assert_eq!(emulator.get("/conversations", &session).await.status(), 200);
    let mut ws = emulator.ws(&session).await;
    emulator.advance_clock_ms(59_000).await;
    assert_eq!(emulator.get("/conversations", &session).await.status(), 200);
    emulator.advance_clock_ms(1_000).await;
    // The socket closes when the clock passes the session's end.
    assert_eq!(ws.closed_with().await, Some(1008));
    let response = emulator.get("/conversations", &session).await;
    assert_eq!(response.status(), 401);
    // A new session lives its full time from the moved clock on.
    let again = emulator.login("alice").await;
    assert_eq!(emulator.get("/conversations", &again).await.status(), 200);
}

#[tokio::test]
async fn a_socket_upgrade_without_a_live_session_is_refused_with_a_nonce() {
    let emulator = spawn_emulator().await;
    let response = emulator
        .http
        .get(format!("{}/?session_token=nope", emulator.url))
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["nonce"].is_string());
}

/// The emulator's 422 messages, pinned word for word: its rules are shared with the token
/// inspector, and moving them must not change what a developer reads.
#[tokio::test]
async fn the_identity_token_messages_are_exactly_the_emulators() {
    let emulator = spawn_emulator().await;
    let nonce = emulator.nonce().await;
    let cases: Vec<(Tamper, String)> = vec![
        (
            Box::new(|h, _| h["alg"] = "HS256".into()),
            r#"alg is "HS256"; Layer identity tokens must be signed with RS256"#.into(),
        ),
        (
            Box::new(|h, _| h["alg"] = Value::Null),
            r#"the header has no alg; it must be "RS256""#.into(),
        ),
        (
            Box::new(|h, _| h["typ"] = "XYZ".into()),
            r#"typ is "XYZ"; it must be "JWT" (or "JWS")"#.into(),
        ),
        (
            Box::new(|h, _| {
                h.as_object_mut().unwrap().remove("cty");
            }),
            r#"the header has no cty; it must be "layer-eit;v=1""#.into(),
        ),
        (
            Box::new(|h, _| h["crit"] = json!(["exp"])),
            "the header has crit extensions, which Layer does not support".into(),
        ),
        (
            Box::new(|h, _| {
                h.as_object_mut().unwrap().remove("kid");
            }),
            "the header has no kid (string): set it to the Layer key ID".into(),
        ),
        (
            Box::new(|h, _| h["kid"] = "layer:///keys/unknown".into()),
            format!(
                r#"kid "layer:///keys/unknown" is not a key the emulator trusts (known: {KID}, {OTHER_KID})"#
            ),
        ),
        (
            Box::new(|h, _| h["kid"] = OTHER_KID.into()),
            format!(
                "kid {OTHER_KID:?} is registered for {PRODUCTION} (production), but the token was \
                 presented for {STAGING} (staging): a staging/production mix-up? Sign with the \
                 key registered for this app, or send the app_id the key belongs to"
            ),
        ),
        (
            Box::new(|_, c| c["iss"] = "layer:///providers/other".into()),
            format!(
                r#"iss is "layer:///providers/other", but the app belongs to the provider "{PROVIDER}""#
            ),
        ),
        (
            Box::new(|_, c| c["prn"] = "".into()),
            "prn must be a non-empty user ID without control characters".into(),
        ),
        (
            Box::new(|_, c| c["prn"] = 42.into()),
            "prn is 42; it must be a string user ID".into(),
        ),
        (
            Box::new(|_, c| c["exp"] = "soon".into()),
            r#"exp is "soon"; it must be integer Unix seconds"#.into(),
        ),
        (
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
            "the claims have no iat".into(),
        ),
        (
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("nce");
            }),
            "the claims have no nce: put the nonce from POST /nonces in it".into(),
        ),
        (
            // A nonce no emulator issued: the format is the inspector's advice, not a rule
            // the emulator stops on.
            Box::new(|_, c| c["nce"] = "ab cd".into()),
            "its nce is not an outstanding nonce (never issued, already used, or older than \
             the nonce lifetime); get a new one from POST /nonces"
                .into(),
        ),
    ];
    for (tamper, expected) in cases {
        let (mut h, mut c) = (header(KID), claims("alice", &nonce));
        tamper(&mut h, &mut c);
        let body = refusal(&emulator, &sign(&h, &c), STAGING).await;
        assert_eq!(
            body["message"],
            format!("Invalid identity token: {expected}")
        );
    }
    let forged = sign_raw(
        &header(KID).to_string(),
        &claims("alice", &nonce).to_string(),
        &keys().1,
    );
    let body = refusal(&emulator, &forged, STAGING).await;
    assert_eq!(
        body["message"],
        format!(
            "Invalid identity token: the signature does not verify with the public key \
             registered for kid {KID:?}"
        )
    );
    let mut expired = claims("alice", &nonce);
    expired["exp"] = 1_000.into();
    let body = refusal(&emulator, &sign(&header(KID), &expired), STAGING).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid identity token: the token expired at 1000 (now "),
        "{body}"
    );
    let malformed = [
        (
            "a.b",
            "a JWS has three dot-separated parts; this token has 2",
        ),
        (
            "a..c",
            "the header, claims and signature must all be non-empty",
        ),
        ("!!.e30.e30", "the header is not unpadded base64url"),
    ];
    for (token, expected) in malformed {
        let body = refusal(&emulator, token, STAGING).await;
        assert_eq!(
            body["message"],
            format!("Invalid identity token: {expected}")
        );
    }
}
