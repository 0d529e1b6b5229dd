//! The rules on hand-built claims: each names what failed, in Layer's order.

use serde_json::{Value, json};

use super::*;

const PROVIDER: &str = "layer:///providers/p";

fn checked(claims: &Value, provider: &str, now: i64) -> Inspection {
    let mut inspection = Inspection {
        rules: Vec::new(),
        header: None,
        claims: Some(Ok(claims.as_object().unwrap().clone())),
        signing_input: String::new(),
        signature: String::new(),
    };
    inspection.finish(None, Ok(provider.to_owned()), now);
    inspection
}

fn failure(claims: &Value, now: i64) -> Rule {
    checked(claims, PROVIDER, now)
        .first_failure()
        .cloned()
        .expect("a rule fails")
}

#[test]
fn claims_rules_name_what_failed() {
    let now = 1_000_000;
    let good = json!({"iss": PROVIDER, "prn": "bob", "iat": now, "exp": now + 60, "nce": "n"});
    let ok = checked(&good, PROVIDER, now);
    assert!(ok.valid(), "{:?}", ok.rules());
    assert_eq!(ok.into_verified().unwrap().user_id, "bob");

    let mut expired = good.clone();
    expired["exp"] = (now - 1).into();
    let rule = failure(&expired, now);
    assert_eq!(
        (rule.rule, rule.reason_code),
        ("expiry", Some("eit_expired"))
    );
    assert!(rule.message.contains("expired"));

    let mut empty_prn = good.clone();
    empty_prn["prn"] = "".into();
    assert_eq!(
        failure(&empty_prn, now).reason_code,
        Some("eit_claim_not_found")
    );

    let mut ahead = good.clone();
    ahead["iat"] = (now + 3600).into();
    let rule = failure(&ahead, now);
    assert_eq!(rule.reason_code, Some("eit_not_before"));
    assert!(
        rule.hint.unwrap().contains("iat is in local time"),
        "local time"
    );

    let wrong_iss = checked(&good, "layer:///providers/q", now);
    let rule = wrong_iss.first_failure().unwrap();
    assert_eq!(rule.reason_code, Some("eit_provider_not_bound_to_app"));
    assert!(rule.message.contains("iss"));
}

#[test]
fn an_integer_type_failure_comes_before_expiry_as_it_always_did() {
    let now = 1_000_000;
    let claims = json!({"iss": PROVIDER, "prn": "bob", "iat": "soon", "exp": now - 5, "nce": "n"});
    let rule = failure(&claims, now);
    assert_eq!(rule.rule, "iat");
    assert_eq!(rule.reason_code, Some("eit_claim_wrong_type"));
}

#[test]
fn a_nonce_with_a_space_is_advisory_for_the_emulator_but_fails_the_report() {
    let now = 1_000_000;
    let claims =
        json!({"iss": PROVIDER, "prn": "bob", "iat": now, "exp": now + 60, "nce": "ab cd"});
    let inspection = checked(&claims, PROVIDER, now);
    assert!(inspection.first_failure().is_none());
    assert!(!inspection.valid());
    let rule = inspection
        .rules()
        .iter()
        .find(|r| r.rule == "nce_format")
        .unwrap();
    assert_eq!(rule.reason_code, Some("eit_nonce_not_found"));
    assert!(rule.hint.as_deref().unwrap().contains("a + in the nonce"));
}
