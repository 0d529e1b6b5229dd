//! The OpenAPI 3.1 description of the identity provider, served at `GET /openapi.json`.
//!
//! It is generated, never written by hand: every route is mounted through utoipa-actix-web
//! (`routes::configure`), which collects each handler's `#[utoipa::path]` operation as it
//! mounts it, so a route and its description are one call. This module adds what is the same
//! for every operation, so no handler can forget it:
//!
//! - the two security schemes (`session`: a session token from `POST /sessions`; `admin`: a
//!   token from `layer-idp admin-tokens create`), both `Authorization: Bearer`;
//! - the error body and the answers any operation may give: 401 where a token is required,
//!   400/413/415 where a body is read, 500;
//! - a form (`application/x-www-form-urlencoded`) next to each JSON request body, derived from
//!   the JSON schema: nested objects become Rails-style `group[name]` fields, and only string
//!   fields are listed (a form carries strings only; a number or boolean goes as JSON).
//!
//! The description is also the router's table of paths: [`RouteTable`] tells a method that a
//! path does not support (405, with `Allow`) from a path that does not exist (404).

use actix_web::dev::ResourceDef;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_actix_web::AppExt;

/// The error body of every failure: `{"error", "error_description", "request_id"}`, plus
/// `field` when one value broke a rule. (Documentation of [`super::error::IdpError`]'s wire
/// format, which renders it.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorCode,
    /// For the developer: what to fix.
    error_description: String,
    /// The value that broke a rule, with `invalid_value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The request's ID, also in the `X-Request-Id` header and the server's log.
    request_id: String,
}

/// The stable, machine-readable error codes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCode {
    /// 400: not JSON or a form, bad encoding, or not valid HTTP/1.1.
    MalformedRequest,
    /// 400: a field missing, unknown, repeated or of the wrong type.
    InvalidRequest,
    /// 422: a value breaks a rule (`field` names it).
    InvalidValue,
    /// 415
    UnsupportedMediaType,
    /// 413
    PayloadTooLarge,
    /// 401: a login failed (the same for every reason).
    InvalidCredentials,
    /// 401: a missing, unknown or expired bearer token; 400: an e-mailed token that is
    /// unknown, used or expired.
    InvalidToken,
    /// 403: the current password given for a change is wrong.
    Forbidden,
    /// 403: the account's address must be verified first.
    EmailNotVerified,
    /// 403: sign-up is closed.
    SignupClosed,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409
    EmailTaken,
    /// 409
    IdTaken,
    /// 409: ask Layer for a new nonce.
    NonceAlreadySigned,
    /// 429, with `Retry-After`.
    TooManyAttempts,
    /// 429, with `Retry-After`.
    TooManySignups,
    /// 503, with `Retry-After`: too many password hashes queued.
    TemporarilyUnavailable,
    /// 503: the database is not reachable.
    NotReady,
    /// 500
    ServerError,
    /// 408: the request line and headers were too slow.
    RequestTimeout,
    /// 431
    RequestHeaderFieldsTooLarge,
}

/// `GET /.well-known/jwks.json` (documentation of [`super::apps::Jwks`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<PublishedJwk>,
}

/// An RS256 public key with its Layer key ID, app and provider.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PublishedJwk {
    /// `RSA`
    kty: String,
    /// `sig`
    #[serde(rename = "use")]
    use_: String,
    /// `RS256`
    alg: String,
    /// The key ID, `layer:///keys/<uuid>`.
    kid: String,
    /// Modulus, base64url.
    n: String,
    /// Exponent, base64url.
    e: String,
    /// The Layer app the key signs for, when several apps are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    layer_app_id: Option<String>,
    layer_provider_id: String,
}

/// `{"status": "ok"}` (and `"database": "ok"` from `/readyz`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Health {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "layer-idp",
        description = "An identity provider for Layer's authentication challenge: accounts, \
            login, Layer identity tokens, keys, and an admin API. Bodies are JSON or forms \
            (Rails-style `user[email]` nesting); a key given twice is refused. Errors are \
            always the JSON `ErrorBody`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "accounts", description = "Sign-up and the caller's own account"),
        (name = "login", description = "Logins, sessions and identity tokens"),
        (name = "lifecycle", description = "E-mail verification and password reset"),
        (name = "meta", description = "Keys, health and this description"),
        (name = "admin", description = "The admin API (admin token)"),
    )
)]
struct Base;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "session",
            bearer("A session token from `POST /sessions`, as `Authorization: Bearer <token>`."),
        );
        components.add_security_scheme(
            "admin",
            bearer(
                "An admin token from `layer-idp admin-tokens create`, as \
                 `Authorization: Bearer <token>`.",
            ),
        );
    }
}

/// The description, serialised once, and the table of its paths.
pub struct Description {
    pub json: String,
    pub routes: RouteTable,
}

/// Generates the description from the same `configure` that mounts the routes.
pub fn describe() -> Description {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(Base::openapi())
        .configure(super::routes::configure)
        .split_for_parts();
    let mut document = serde_json::to_value(&api).unwrap_or_default();
    complete(&mut document);
    Description {
        routes: RouteTable::of(&document),
        json: document.to_string(),
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Adds to every operation what is the same for all (see the module's comment).
fn complete(document: &mut Value) {
    merge_flattened(document);
    let schemas = document
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                complete_operation(operation, &schemas);
            }
        }
    }
}

/// A `#[serde(flatten)]` field comes out as `allOf` of the two objects, each closed to the
/// other's properties (`deny_unknown_fields`), which no object satisfies; the server reads them
/// as one object, so the description says so.
fn merge_flattened(document: &mut Value) {
    let Some(schemas) = document.pointer("/components/schemas").cloned() else {
        return;
    };
    let Some(targets) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in targets.values_mut() {
        let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
            continue;
        };
        let closed = parts
            .iter()
            .any(|p| resolve(p, &schemas).get("additionalProperties") == Some(&json!(false)));
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, (property, is_required)) in flatten_object(schema, &schemas) {
            if is_required {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name, property);
        }
        let mut merged = json!({"type": "object", "properties": properties, "required": required});
        if closed {
            merged["additionalProperties"] = json!(false);
        }
        if let Some(description) = schema.get("description") {
            merged["description"] = description.clone();
        }
        *schema = merged;
    }
}

fn complete_operation(operation: &mut Map<String, Value>, schemas: &Value) {
    let takes_body = operation.contains_key("requestBody");
    if let Some(content) = operation
        .get_mut("requestBody")
        .and_then(|b| b.get_mut("content"))
        .and_then(Value::as_object_mut)
        && let Some(json_schema) = content
            .get("application/json")
            .and_then(|c| c.get("schema"))
            .cloned()
    {
        content
            .entry("application/x-www-form-urlencoded")
            .or_insert_with(|| json!({"schema": form_schema(&json_schema, schemas)}));
    }
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    if takes_body {
        add_error(
            responses,
            "400",
            "`malformed_request`: the body is not JSON or a form, or not UTF-8; \
             `invalid_request`: a field is missing, unknown, repeated or of the wrong type.",
        );
        add_error(
            responses,
            "413",
            "`payload_too_large`: the body is over `[http] max_body_bytes`.",
        );
        add_error(
            responses,
            "415",
            "`unsupported_media_type`: the body is neither `application/json` nor \
             `application/x-www-form-urlencoded`.",
        );
    }
    if secured && !responses.contains_key("401") {
        responses.insert(
            "401".to_owned(),
            json!({
                "description": "`invalid_token`: the bearer token is missing, unknown, expired \
                                or revoked.",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": error_content(),
            }),
        );
    }
    add_error(
        responses,
        "500",
        "`server_error`: logged in full; the body says nothing internal.",
    );
}

fn error_content() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}})
}

/// Documents an error answer; a status the operation already documents keeps its own words and
/// gains these, and the error body where it names none for JSON.
fn add_error(responses: &mut Map<String, Value>, status: &str, description: &str) {
    match responses.get_mut(status).and_then(Value::as_object_mut) {
        Some(response) => {
            let own = response
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            response.insert(
                "description".to_owned(),
                Value::String(format!("{own} {description}").trim().to_owned()),
            );
            let content = response
                .entry("content")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(content) = content {
                content
                    .entry("application/json")
                    .or_insert_with(|| error_content()["application/json"].clone());
            }
        }
        None => {
            responses.insert(
                status.to_owned(),
                json!({"description": description, "content": error_content()}),
            );
        }
    }
}

/// The schema of a form with the fields of a JSON body schema (see the module's comment).
fn form_schema(json_schema: &Value, schemas: &Value) -> Value {
    let object = flatten_object(json_schema, schemas);
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, (schema, is_required)) in object {
        let schema = resolve(&schema, schemas);
        if let Some(inner) = as_object(&schema, schemas) {
            for (inner_name, (inner_schema, inner_required)) in inner {
                if let Some(field) = string_field(&resolve(&inner_schema, schemas)) {
                    let key = format!("{name}[{inner_name}]");
                    if is_required && inner_required {
                        required.push(Value::String(key.clone()));
                    }
                    properties.insert(key, field);
                }
            }
        } else if let Some(field) = string_field(&schema) {
            if is_required {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name, field);
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

type Fields = Vec<(String, (Value, bool))>;

/// The properties of an object schema (following `$ref` and `allOf`), with whether each is
/// required.
fn flatten_object(schema: &Value, schemas: &Value) -> Fields {
    let schema = resolve(schema, schemas);
    let mut fields = Fields::new();
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            fields.extend(flatten_object(part, schemas));
        }
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            fields.push((
                name.clone(),
                (property.clone(), required.contains(&name.as_str())),
            ));
        }
    }
    fields
}

/// The fields of a property that is itself an object (possibly nullable), else `None`.
fn as_object(schema: &Value, schemas: &Value) -> Option<Fields> {
    let candidates: Vec<Value> = match schema.get("oneOf").or_else(|| schema.get("anyOf")) {
        Some(Value::Array(variants)) => variants.iter().map(|v| resolve(v, schemas)).collect(),
        _ => vec![schema.clone()],
    };
    candidates
        .into_iter()
        .find(|c| c.get("properties").is_some() || c.get("allOf").is_some())
        .map(|c| flatten_object(&c, schemas))
}

/// A string field's schema, without `null` (a form has no null), or `None` for a field that
/// is not a string.
fn string_field(schema: &Value) -> Option<Value> {
    let is_string = match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    if !is_string {
        return None;
    }
    let mut field = schema.as_object()?.clone();
    field.insert("type".to_owned(), Value::String("string".to_owned()));
    Some(Value::Object(field))
}

fn resolve(schema: &Value, schemas: &Value) -> Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => resolve(&schemas[name], schemas),
        None => schema.clone(),
    }
}

/// The description's paths, matched as the router matches them.
pub struct RouteTable {
    routes: Vec<(ResourceDef, Vec<String>)>,
}

impl RouteTable {
    fn of(document: &Value) -> Self {
        let routes = document
            .get("paths")
            .and_then(Value::as_object)
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let methods = METHODS
                            .iter()
                            .filter(|m| item.get(**m).is_some())
                            .map(|m| m.to_ascii_uppercase())
                            .collect();
                        (ResourceDef::new(path.as_str()), methods)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { routes }
    }

    /// The methods a documented path takes, or `None` for a path not in the description.
    pub fn methods_of(&self, path: &str) -> Option<&[String]> {
        self.routes
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_flatten_nested_objects_and_keep_only_string_fields() {
        let schemas = json!({
            "Inner": {"type": "object", "properties": {
                "email": {"type": "string"}, "n": {"type": "integer"}}, "required": ["email"]},
        });
        let body = json!({"type": "object", "properties": {
            "user": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Inner"}]},
            "nonce": {"type": ["string", "null"], "maxLength": 512},
            "at": {"type": ["integer", "null"]},
            "token": {"type": "string"},
        }, "required": ["token"]});
        let form = form_schema(&body, &schemas);
        assert_eq!(
            form["properties"],
            json!({
                "user[email]": {"type": "string"},
                "nonce": {"type": "string", "maxLength": 512},
                "token": {"type": "string"},
            })
        );
        assert_eq!(form["required"], json!(["token"]));
    }

    #[test]
    fn every_operation_is_secured_as_its_path_says_and_documents_its_errors() {
        let document: Value = serde_json::from_str(&describe().json).unwrap();
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.len() > 20, "{paths:?}");
        for (path, item) in paths {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let schemes: Vec<&str> = operation["security"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .flat_map(|r| r.as_object().unwrap().keys())
                            .map(String::as_str)
                            .collect()
                    })
                    .unwrap_or_default();
                if path.starts_with("/admin/") {
                    assert_eq!(schemes, ["admin"], "{method} {path}");
                } else {
                    assert!(!schemes.contains(&"admin"), "{method} {path}");
                }
                assert!(operation["responses"]["500"].is_object(), "{method} {path}");
                if operation.get("requestBody").is_some() {
                    let content = &operation["requestBody"]["content"];
                    assert!(content["application/json"].is_object(), "{method} {path}");
                    assert!(
                        content["application/x-www-form-urlencoded"].is_object(),
                        "{method} {path}"
                    );
                }
            }
        }
    }
}
