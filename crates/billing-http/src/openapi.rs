//! The OpenAPI document, derived from the routes' annotations and the body types (`dto`),
//! served at `/openapi.json` and `/openapi.yaml`; `docs/openapi.yaml` is a generated copy that
//! a test keeps equal to it.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::{ApiError, ErrorCode};
use crate::{api, dto, ops, webhook};

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A stable machine-readable error code; each code has one HTTP status.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {}

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
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi_json,
        ops::openapi_yaml,
    ),
    components(schemas(ErrorCode, dto::ErrorBody, dto::ErrorDetail)),
    modifiers(&Conventions)
)]
pub(crate) struct ApiDoc;

/// The bearer scheme, and what every operation shares: the `X-Request-Id` header both ways.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        exactly_one_price(components);
        let request_id = request_id_parameter();
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
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(request_id.clone());
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
    }
}

/// `CheckoutRequest` takes exactly one of `price_id` and `tier` (a string, the other absent or
/// null).
fn exactly_one_price(components: &mut utoipa::openapi::Components) {
    let Some(original) = components.schemas.remove("CheckoutRequest") else {
        return;
    };
    let only = |given: &str, other: &str| {
        ObjectBuilder::new()
            .required(given)
            .property(given, ObjectBuilder::new().schema_type(Type::String))
            .property(other, ObjectBuilder::new().schema_type(Type::Null))
    };
    let choice = OneOfBuilder::new()
        .item(only("price_id", "tier"))
        .item(only("tier", "price_id"));
    let combined = AllOfBuilder::new()
        .item(original)
        .item(choice)
        .description(Some(
            "A new Checkout session: exactly one of `price_id` and `tier`.",
        ));
    components
        .schemas
        .insert("CheckoutRequest".to_owned(), combined.into());
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

/// The document as JSON.
pub(crate) fn json() -> Result<String, ApiError> {
    ApiDoc::openapi()
        .to_pretty_json()
        .map_err(|e| internal(e.to_string()))
}

/// The document as YAML (what `docs/openapi.yaml` holds).
pub(crate) fn yaml() -> Result<String, ApiError> {
    ApiDoc::openapi()
        .to_yaml()
        .map_err(|e| internal(e.to_string()))
}

fn internal(cause: String) -> ApiError {
    ApiError::new(
        ErrorCode::InternalError,
        "the request could not be completed",
    )
    .with_cause(cause)
}
