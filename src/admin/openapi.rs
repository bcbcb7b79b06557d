//! The OpenAPI 3.1 document of the management API, generated from the handlers and the
//! types they use, plus the refusals of the keygate layer in front of every route.

use utoipa::openapi::schema::{ObjectBuilder, Ref, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi as _, ToResponse};

use serde_json::{json, Value};

use super::body::NAME_PATTERN;
use super::handlers;
use super::refusals::{
    error_schema, BadRequest, BadUsageQuery, BodyTooLarge, Forbidden, ForbiddenChange,
    LimitReached, NotFound, RateLimited, RevokedConflict, Unauthorized, Unavailable,
};
use crate::Keygate;

/// The keygate layer in front of every route: the bearer scheme, the error schema, and
/// its refusals on every operation.
struct LayerRefusals;

impl Modify for LayerRefusals {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "bearer".into(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key with the scope the operation names"))
                    .build(),
            )
            .into(),
        );
        components
            .schemas
            .insert("Error".into(), error_schema().into());
        let refusals = [
            ("400", BadRequest::response().0),
            ("401", Unauthorized::response().0),
            ("403", Forbidden::response().0),
            ("429", RateLimited::response().0),
            ("503", Unavailable::response().0),
        ];
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for op in operations.into_iter().flatten() {
                for (status, name) in refusals {
                    op.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| Ref::from_response_name(name).into());
                }
            }
        }
    }
}

/// The constraints the derive cannot state: a name's characters.
struct Patterns;

impl Modify for Patterns {
    fn modify(&self, doc: &mut OpenApi) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for body in ["NewApiKey", "ApiKeyUpdate"] {
            if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(body) {
                if let Some(RefOr::T(Schema::Object(name))) = body.properties.get_mut("name") {
                    name.pattern = Some(NAME_PATTERN.to_owned());
                }
            }
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "keygate management API",
        description = "Create, list, change, roll and revoke API keys, acting as the calling \
                       key: it sees only its own account's keys of its own environment, and \
                       never makes or touches a key less restricted than itself.",
    ),
    paths(
        handlers::create,
        handlers::list,
        handlers::show,
        handlers::update,
        handlers::remove,
        handlers::roll,
        super::usage::usage,
    ),
    components(
        // Parameters' schemas are not collected on their own.
        schemas(crate::store::KeyStatusFilter, super::usage::UsageGranularity),
        responses(
            BadRequest,
            BadUsageQuery,
            Unauthorized,
            Forbidden,
            ForbiddenChange,
            NotFound,
            LimitReached,
            RevokedConflict,
            BodyTooLarge,
            RateLimited,
            Unavailable,
        ),
    ),
    security(("bearer" = [])),
    tags((name = "api-keys", description = "API keys")),
    modifiers(&LayerRefusals, &Patterns),
)]
pub(super) struct ApiDoc;

/// [`ApiDoc`] narrowed to `gate`'s deployment: a new key's `prefix` is one of the
/// prefixes it accepts, and its `environment` the deployment's own, if it has one.
pub(super) fn for_deployment(gate: &Keygate) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    let expected = gate.environment();
    let accepted = gate
        .format()
        .prefixes()
        .iter()
        .filter(|p| match (expected, p.environment()) {
            (None, _) => true,
            (Some(e), Some(env)) => e == env,
            (Some(_), None) => gate.accepts_environment_neutral_keys(),
        });
    let mut prefixes: Vec<Value> = accepted.map(|p| p.as_str().into()).collect();
    prefixes.push(Value::Null);
    let new_key = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("NewApiKey"));
    let Some(RefOr::T(Schema::Object(new_key))) = new_key else {
        return doc;
    };
    if let Some(RefOr::T(Schema::Object(prefix))) = new_key.properties.get_mut("prefix") {
        prefix.enum_values = Some(prefixes);
    }
    if let Some(env) = expected {
        let schema = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .enum_values(Some([json!(env), Value::Null]))
            .description(Some(
                "The environment: this deployment's own; left out or `null` for it",
            ))
            .build();
        new_key
            .properties
            .insert("environment".into(), RefOr::T(Schema::Object(schema)));
    }
    doc
}

#[cfg(test)]
mod tests {

    use utoipa::OpenApi as _;

    use super::*;
    use crate::activity::UsageQueryError;
    use crate::admin::error::AdminError as ApiError;
    use crate::admin::refusals::ERROR_CODES;
    use crate::documented_codes::every_refusal;
    use crate::error::AuthError;
    use crate::key::Environment;
    use crate::manage::ManageError;
    use crate::store::StoreError;
    use axum::http::StatusCode;

    /// One of each failure a documented operation's handler can answer with; the match
    /// has no wildcard, as in `every_refusal`, so a new variant must be listed here.
    fn every_handler_error() -> Vec<ApiError> {
        let all = vec![
            ManageError::NotFound.into(),
            ManageError::InvalidRequest("bad".into()).into(),
            ManageError::LimitReached { limit: 1 }.into(),
            ManageError::Escalation("no".into()).into(),
            ManageError::Widening("no".into()).into(),
            ManageError::Revoked.into(),
            ManageError::EnvironmentRequired.into(),
            ManageError::ReadOnlyField("created_by: no".into()).into(),
            ManageError::Store(StoreError::unavailable("down")).into(),
            ApiError::BodyTooLarge(64 * 1024),
            ManageError::from(UsageQueryError::UnknownGranularity).into(),
            ManageError::from(UsageQueryError::Reversed).into(),
            ManageError::from(UsageQueryError::TooManyBuckets { buckets: 1501 }).into(),
            ManageError::from(UsageQueryError::BeyondRetention {
                granularity: crate::activity::Granularity::Minute,
                retention: std::time::Duration::from_secs(3600),
            })
            .into(),
        ];
        for e in &all {
            match e {
                ApiError::Manage(
                    ManageError::NotFound
                    | ManageError::InvalidRequest(_)
                    | ManageError::LimitReached { .. }
                    | ManageError::Escalation(_)
                    | ManageError::Widening(_)
                    | ManageError::Revoked
                    | ManageError::EnvironmentRequired
                    | ManageError::ReadOnlyField(_)
                    | ManageError::Usage(
                        UsageQueryError::UnknownGranularity
                        | UsageQueryError::Reversed
                        | UsageQueryError::TooManyBuckets { .. }
                        | UsageQueryError::BeyondRetention { .. },
                    )
                    | ManageError::Store(_),
                )
                // Only `KeyManager::import` returns it, which no handler calls.
                | ApiError::Manage(ManageError::AlreadyExists(_))
                | ApiError::BodyTooLarge(_) => {}
                // Not an answer of a documented operation: a method the document does
                // not list, and a route without keygate's layer, which the router never
                // builds.
                ApiError::MethodNotAllowed(_) | ApiError::MissingIdentity => {}
            }
        }
        all
    }

    fn documented(status: StatusCode, code: &str) -> bool {
        ERROR_CODES
            .iter()
            .any(|(s, c, _)| *s == status && *c == code)
    }

    #[test]
    fn every_refusal_of_the_layer_is_documented_with_its_status() {
        for e in every_refusal() {
            assert!(documented(e.status(), e.code()), "{e:?} is not documented");
        }
    }

    #[test]
    fn every_handler_error_is_documented_with_its_status() {
        for e in every_handler_error() {
            assert!(
                documented(e.status(), e.code()),
                "{} is not documented",
                e.code()
            );
        }
    }

    #[test]
    fn every_documented_code_is_produced_by_something() {
        let produced: Vec<&str> = every_refusal()
            .iter()
            .map(AuthError::code)
            .chain(every_handler_error().iter().map(ApiError::code))
            .collect();
        for (_, code, _) in ERROR_CODES {
            assert!(
                produced.contains(code),
                "{code} is documented but never produced"
            );
        }
    }

    #[test]
    fn the_roll_grace_maximum_is_the_one_the_handler_enforces() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let max =
            &doc["components"]["schemas"]["ApiKeyRoll"]["properties"]["grace_seconds"]["maximum"];
        assert_eq!(max.as_u64(), Some(crate::admin::MAX_GRACE_SECONDS));
    }

    #[test]
    fn the_cursor_pattern_is_the_one_the_manager_decodes() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let params = doc["paths"]["/v1/api-keys"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let cursor = params.iter().find(|p| p["name"] == "cursor").unwrap();
        let inner = crate::manage::cursor::CURSOR_PATTERN
            .trim_start_matches('^')
            .trim_end_matches('$');
        // Empty is the first page, as is no cursor.
        assert_eq!(
            cursor["schema"]["pattern"].as_str(),
            Some(format!("^({inner})?$").as_str())
        );
    }

    #[test]
    fn the_deployment_document_names_the_prefixes_and_environment_it_accepts() {
        let gate = Keygate::builder(crate::MemoryStore::new())
            .environment(Environment::Test)
            .build();
        let doc = serde_json::to_value(for_deployment(&gate)).unwrap();
        let new = &doc["components"]["schemas"]["NewApiKey"]["properties"];
        let prefixes = new["prefix"]["enum"].as_array().unwrap();
        assert!(prefixes.contains(&Value::Null), "{prefixes:?}");
        for p in prefixes.iter().filter_map(Value::as_str) {
            let prefix = gate.format().prefix(p).unwrap();
            assert_eq!(prefix.environment(), Some(Environment::Test), "{p}");
        }
        assert!(prefixes.len() > 1);
        assert_eq!(new["environment"]["enum"], json!(["test", null]));
        // The rest is the default document.
        let default = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert_eq!(doc["paths"], default["paths"]);
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", serde_json::Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_in_the_document_resolves() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.contains(&"#/components/schemas/KeyStatusFilter"));
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }
}
