//! The OpenAPI document, derived from the routes' annotations and the body types (`dto`),
//! completed with what the running server's plan catalog accepts (its metrics, features,
//! prices and tiers), and served at `/openapi.json` and `/openapi.yaml`. `docs/openapi.yaml` is
//! a generated copy for the example catalog (`plans.toml`) that a test keeps equal to it.

use std::collections::BTreeMap;

use billing_domain::Catalog;
use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Schema};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema};

use billing_api::{ErrorBody, ErrorCode, ErrorDetail};

use crate::error::ApiError;
use crate::{api, input, ops, webhook};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Billing server API",
        description = "The product's questions about billing, answered from the state built out of Stripe's webhooks. Every `/v1` route needs `Authorization: Bearer <api key>` (the scheme in any case). Every error is `{\"error\": {\"code\", \"message\"}}`; a 5xx message is opaque. Every answer carries `X-Request-Id`."
    ),
    paths(
        webhook::receive,
        api::entitlements,
        api::feature,
        api::usage,
        api::sync,
        api::checkout,
        api::portal,
        api::catalog,
        api::changes,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi_json,
        ops::openapi_yaml,
    ),
    components(schemas(ErrorCode, ErrorBody, ErrorDetail)),
    modifiers(&Conventions)
)]
pub(crate) struct ApiDoc;

/// The bearer scheme, and what every operation shares: the `X-Request-Id` header both ways,
/// and one pattern for every user id it takes (a `user_id` path parameter or property of its
/// request body): [`input::USER_ID_PATTERN`], what `input::user_id` accepts.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let request_id = request_id_parameter();
        let mut request_bodies = Vec::new();
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                for parameter in parameters.iter_mut().filter(|p| p.name == USER_ID) {
                    user_id_pattern(parameter.schema.as_mut());
                }
                parameters.push(request_id.clone());
                let bodies = operation
                    .request_body
                    .iter()
                    .flat_map(|b| b.content.values());
                request_bodies.extend(bodies.filter_map(|content| match &content.schema {
                    Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().map(str::to_owned),
                    _ => None,
                }));
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert(
                            REQUEST_ID.to_owned(),
                            HeaderBuilder::new()
                                .schema(String::schema())
                                .description(Some(
                                    "The request id (the caller's when it is a plain token).",
                                ))
                                .build(),
                        );
                    }
                }
            }
        }
        for name in request_bodies {
            if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(&name) {
                user_id_pattern(body.properties.get_mut(USER_ID));
            }
        }
    }
}

/// The name of every user id the API takes.
const USER_ID: &str = "user_id";

/// Gives a user id's string schema the pattern of what `input::user_id` accepts.
fn user_id_pattern(schema: Option<&mut RefOr<Schema>>) {
    if let Some(RefOr::T(Schema::Object(object))) = schema {
        object.pattern = Some(input::USER_ID_PATTERN.to_owned());
    }
}

/// What the plan catalog accepts, written into the document as enums: the metrics usage
/// counts, the features the feature gate knows, the prices and the purchasable tiers (those
/// with a price) Checkout sells; and Checkout's rules across fields (exactly one of `price_id`
/// and `tier`; `trial_days` with `mode: subscription` only). A value outside an enum is
/// answered 400 (`unknown_metric`, `unknown_price`) or 404 (`unknown_feature`).
struct CatalogValues<'c>(&'c Catalog);

impl Modify for CatalogValues<'_> {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let catalog = self.0;
        let prices: Vec<&str> = catalog
            .tiers()
            .iter()
            .flat_map(|tier| tier.price_ids.iter().map(String::as_str))
            .collect();
        let tiers: Vec<&str> = catalog
            .tiers()
            .iter()
            .filter(|tier| !tier.price_ids.is_empty())
            .map(|tier| tier.id.as_str())
            .collect();
        if let Some(feature) = openapi
            .paths
            .paths
            .get_mut("/v1/users/{user_id}/features/{feature}")
            .and_then(|item| item.get.as_mut())
            .and_then(|operation| operation.parameters.as_mut())
            .and_then(|parameters| parameters.iter_mut().find(|p| p.name == "feature"))
        {
            restrict(feature.schema.as_mut(), catalog.features());
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        if let Some(RefOr::T(Schema::Object(usage))) = components.schemas.get_mut("UsageRequest") {
            restrict(usage.properties.get_mut("metric"), catalog.metrics());
        }
        checkout_rules(components, &prices, &tiers);
    }
}

/// Sets the enum of a string schema to `values`.
fn restrict<'v>(schema: Option<&mut RefOr<Schema>>, values: impl Iterator<Item = &'v str>) {
    if let Some(RefOr::T(Schema::Object(object))) = schema {
        object.enum_values = Some(values.map(Value::from).collect());
    }
}

/// A string schema with these values only.
fn one_of_values(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
}

/// `CheckoutRequest` takes exactly one of `price_id` (one of `prices`) and `tier` (one of
/// `tiers`), the other absent or null; and `trial_days` only with `mode: subscription`.
fn checkout_rules(components: &mut utoipa::openapi::Components, prices: &[&str], tiers: &[&str]) {
    let Some(original) = components.schemas.remove("CheckoutRequest") else {
        return;
    };
    let only = |given: &str, values: &[&str], other: &str| {
        ObjectBuilder::new()
            .required(given)
            .property(given, one_of_values(values))
            .property(other, ObjectBuilder::new().schema_type(Type::Null))
    };
    let price_or_tier = OneOfBuilder::new()
        .item(only("price_id", prices, "tier"))
        .item(only("tier", tiers, "price_id"));
    let trial_for_subscriptions = AnyOfBuilder::new()
        .item(ObjectBuilder::new().property("mode", one_of_values(&["subscription"])))
        .item(
            ObjectBuilder::new()
                .property("trial_days", ObjectBuilder::new().schema_type(Type::Null)),
        );
    let combined = AllOfBuilder::new()
        .item(original)
        .item(price_or_tier)
        .item(trial_for_subscriptions)
        .description(Some(
            "A new Checkout session: exactly one of `price_id` and `tier`; `trial_days` with `mode: subscription` only.",
        ));
    components
        .schemas
        .insert("CheckoutRequest".to_owned(), combined.into());
}

/// An error answer (`ErrorBody`) described by `description`.
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// Error answers by status.
fn error_responses(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error_response(description)))
        .collect()
}

/// The errors every route shares: 405 `method_not_allowed` (with `Allow`) for any other
/// method.
pub(crate) struct RouteErrors;

impl IntoResponses for RouteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[(405, "Method not allowed")])
    }
}

/// The errors every route that can fail inside the server shares: [`RouteErrors`] and an
/// opaque 500.
pub(crate) struct ServerErrors;

impl IntoResponses for ServerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = RouteErrors::responses();
        responses.extend(error_responses(&[(500, "Internal error (opaque)")]));
        responses
    }
}

/// The errors every `/v1` route shares: [`ServerErrors`] and 401 for a missing or refused
/// API key.
pub(crate) struct V1Errors;

impl IntoResponses for V1Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = ServerErrors::responses();
        responses.extend(error_responses(&[(401, "Missing or invalid API key")]));
        responses
    }
}

/// The errors of a route that reads a body: 408 past the body deadline, 413 past the size
/// limit.
pub(crate) struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[
            (408, "The body did not arrive in time"),
            (413, "Body too large"),
        ])
    }
}

/// The errors of a route that reads a JSON body: [`BodyErrors`] and 415 for another media
/// type.
pub(crate) struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = BodyErrors::responses();
        responses.extend(error_responses(&[(415, "Not application/json")]));
        responses
    }
}

/// The error of a route that needs the database only: 503 when it is unreachable.
pub(crate) struct DatabaseErrors;

impl IntoResponses for DatabaseErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[(503, "Database unavailable")])
    }
}

/// The errors of a route that calls Stripe: 502 when Stripe refuses or answers unexpectedly,
/// 503 when the database or Stripe is unreachable.
pub(crate) struct StripeErrors;

impl IntoResponses for StripeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[
            (502, "Stripe refused or answered unexpectedly"),
            (503, "Database or Stripe unavailable"),
        ])
    }
}

const REQUEST_ID: &str = "X-Request-Id";

fn request_id_parameter() -> Parameter {
    ParameterBuilder::new()
        .name(REQUEST_ID)
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "A request id to reuse when it is 1 to 64 characters of [A-Za-z0-9._:-]; any other value is replaced by a new id.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// The document of a server over `catalog`: [`ApiDoc`] with the catalog's values as enums.
pub(crate) fn document(catalog: &Catalog) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    CatalogValues(catalog).modify(&mut document);
    document
}

/// The document of one server, rendered once (it depends only on the catalog) and answered by
/// `/openapi.json` and `/openapi.yaml`; a rendering error is answered as a 500 and logged.
#[derive(Debug)]
pub(crate) struct Served {
    json: Result<String, String>,
    yaml: Result<String, String>,
}

impl Served {
    /// Renders the document of a server over `catalog`.
    pub(crate) fn new(catalog: &Catalog) -> Self {
        let document = document(catalog);
        Self {
            json: document.to_pretty_json().map_err(|e| e.to_string()),
            yaml: document.to_yaml().map_err(|e| e.to_string()),
        }
    }

    /// The document as JSON.
    pub(crate) fn json(&self) -> Result<&str, ApiError> {
        self.json
            .as_deref()
            .map_err(|cause| internal(cause.as_str()))
    }

    /// The document as YAML (what `docs/openapi.yaml` holds for the example catalog).
    pub(crate) fn yaml(&self) -> Result<&str, ApiError> {
        self.yaml
            .as_deref()
            .map_err(|cause| internal(cause.as_str()))
    }
}

fn internal(cause: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InternalError,
        "the request could not be completed",
    )
    .with_cause(cause)
}
