//! The gate (a backend, the product's user source, the failure policy) and the guards it
//! builds: actix-web middleware wrapped around a resource or scope.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::HeaderName;
use actix_web::{Error, FromRequest, HttpMessage as _, HttpRequest, ResponseError as _};
use futures_util::future::LocalBoxFuture;

use crate::GateError;
use crate::backend::{CatalogNames, GateBackend, UsageDecision};
use crate::error::Refusal;

/// The header a [`Consume`] guard reads its idempotency key from unless told otherwise.
pub const DEFAULT_IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The request id header a [`Consume`] guard falls back to when the request has no
/// idempotency key, unless told otherwise ([`GateBuilder::request_id_header`]).
pub const DEFAULT_REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest idempotency key billing stores (the metric's name and a colon included).
const MAX_KEY_LEN: usize = billing_domain::ids::MAX_ID_BYTES;

type UserFuture = LocalBoxFuture<'static, Option<String>>;

/// The product's function from a request to its user.
type UserFn = dyn Fn(&HttpRequest) -> Option<String> + Send + Sync;

/// The product's extractor, run on a request.
type ExtractFn = dyn Fn(&HttpRequest) -> UserFuture + Send + Sync;

/// How the gate finds the request's user: the product's authentication.
#[derive(Clone)]
enum UserSource {
    /// A plain function of the request (reading a header, a request extension, …).
    Plain(Arc<UserFn>),
    /// The product's actix-web extractor.
    Extractor(Arc<ExtractFn>),
}

/// Builds a [`Gate`]: the backend, where the user comes from, and the failure policy.
pub struct GateBuilder {
    backend: Arc<dyn GateBackend>,
    user: Option<UserSource>,
    fail_open: bool,
    request_id_header: HeaderName,
}

/// The shared part of a gate and of every guard it built.
struct Inner {
    backend: Arc<dyn GateBackend>,
    names: CatalogNames,
    user: UserSource,
    fail_open: bool,
    request_id_header: HeaderName,
}

/// A built gate: it knows the catalog's names, so every guard it makes is checked when it is
/// made, at start-up. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

impl Gate {
    /// Starts building a gate answered by `backend`.
    pub fn builder(backend: impl GateBackend) -> GateBuilder {
        GateBuilder {
            backend: Arc::new(backend),
            user: None,
            fail_open: false,
            request_id_header: HeaderName::from_static(DEFAULT_REQUEST_ID_HEADER),
        }
    }

    /// The catalog names the gate was built with.
    pub fn catalog(&self) -> &CatalogNames {
        &self.inner.names
    }

    /// True when the gate lets requests through while billing cannot answer.
    pub fn fails_open(&self) -> bool {
        self.inner.fail_open
    }

    /// The guard enforcing `requirement`, as actix-web middleware (`.wrap(guard)` on a
    /// resource, scope or app). Fails when the catalog does not know the feature, tier or
    /// metric it names, or when an option cannot work: call it at start-up.
    pub fn require(&self, requirement: impl Into<Requirement>) -> Result<Guard, GateError> {
        let names = &self.inner.names;
        let check = match requirement.into() {
            Requirement::Feature(RequireFeature { feature }) => {
                if !names.features.contains(&feature) {
                    return Err(GateError::UnknownFeature(feature));
                }
                Check::Feature(feature)
            }
            Requirement::Tier(RequireTier { tier }) => match names.rank(&tier) {
                Some(rank) => Check::Tier { tier, rank },
                None => return Err(GateError::UnknownTier(tier)),
            },
            Requirement::Consume(Consume {
                metric,
                quantity,
                header,
            }) => {
                if !names.metrics.contains(&metric) {
                    return Err(GateError::UnknownMetric(metric));
                }
                if quantity == 0 {
                    return Err(GateError::InvalidOption(format!(
                        "Consume::new({metric:?}, 0) counts nothing"
                    )));
                }
                let header = HeaderName::try_from(header.as_str()).map_err(|_| {
                    GateError::InvalidOption(format!("{header:?} is not a header name"))
                })?;
                Check::Consume {
                    metric,
                    quantity,
                    header,
                }
            }
        };
        Ok(Guard {
            gate: Arc::clone(&self.inner),
            check: Arc::new(check),
        })
    }
}

impl GateBuilder {
    /// The user of a request, from a function of it (a header your authentication set, a
    /// request extension, a session): `None` means no authenticated user (answered 401).
    pub fn user_id<F>(mut self, user: F) -> Self
    where
        F: Fn(&HttpRequest) -> Option<String> + Send + Sync + 'static,
    {
        self.user = Some(UserSource::Plain(Arc::new(user)));
        self
    }

    /// The user of a request, from the product's own actix-web extractor `E` (its
    /// authentication): an extractor that fails means no authenticated user (answered 401).
    pub fn user_extractor<E>(mut self) -> Self
    where
        E: FromRequest + Into<String> + 'static,
        E::Future: 'static,
    {
        self.user = Some(UserSource::Extractor(Arc::new(|request: &HttpRequest| {
            let extracted = E::from_request(request, &mut Payload::None);
            Box::pin(async move { extracted.await.ok().map(Into::into) })
        })));
        self
    }

    /// Lets requests through when billing cannot answer (the database or the billing server
    /// is down), instead of answering 503. Logged at start and on every request it lets
    /// through. Denials (402, 429) are never turned into passes.
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// The header carrying the request id, the idempotency key of a [`Consume`] on a request
    /// without its own (default `X-Request-Id`).
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = name;
        self
    }

    /// Reads the catalog's names from the backend and builds the gate. Fails when no user
    /// source was given or when the backend cannot answer (whatever the failure policy: the
    /// names must be known at start-up).
    pub async fn build(self) -> Result<Gate, GateError> {
        let user = self.user.ok_or_else(|| {
            GateError::InvalidOption(
                "no user source: call user_id or user_extractor on the builder".to_owned(),
            )
        })?;
        let names = self.backend.catalog().await?;
        if self.fail_open {
            tracing::warn!("the billing gate fails open: requests pass when billing cannot answer");
        }
        Ok(Gate {
            inner: Arc::new(Inner {
                backend: self.backend,
                names,
                user,
                fail_open: self.fail_open,
                request_id_header: self.request_id_header,
            }),
        })
    }
}

/// A requirement a guard enforces; made from [`RequireFeature`], [`RequireTier`] or
/// [`Consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The user's tier has a feature.
    Feature(RequireFeature),
    /// The user's tier is at least a tier.
    Tier(RequireTier),
    /// One atomic usage consume per request.
    Consume(Consume),
}

/// The user's tier must have `feature` (402 `feature_not_included` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireFeature {
    feature: String,
}

impl RequireFeature {
    /// Requires the catalog feature `feature`.
    pub fn new(feature: impl Into<String>) -> Self {
        Self {
            feature: feature.into(),
        }
    }
}

/// The user's tier must rank at least as high as a tier (402 `tier_too_low` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireTier {
    tier: String,
}

impl RequireTier {
    /// Requires the catalog tier `tier` or a higher one.
    pub fn at_least(tier: impl Into<String>) -> Self {
        Self { tier: tier.into() }
    }
}

/// Counts `quantity` of a metric per request, atomically, before the handler runs (429
/// `usage_limit_exceeded` with `Retry-After` when the period's quota does not hold it). The
/// idempotency key is the request's `Idempotency-Key` header (another header with
/// [`Consume::idempotency_header`]), else its request id, else a fresh one: a retried request
/// with the same key is counted once. A request the handler then fails stays counted. Wrap
/// it around the route (`web::post().to(handler).wrap(guard)`) rather than the resource, so
/// that a request with another method (answered 405) is not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consume {
    metric: String,
    quantity: u64,
    header: String,
}

impl Consume {
    /// Consumes `quantity` of the catalog metric `metric` per request.
    pub fn new(metric: impl Into<String>, quantity: u64) -> Self {
        Self {
            metric: metric.into(),
            quantity,
            header: DEFAULT_IDEMPOTENCY_HEADER.to_owned(),
        }
    }

    /// Reads the idempotency key from the header `name` instead of `Idempotency-Key`.
    pub fn idempotency_header(mut self, name: impl Into<String>) -> Self {
        self.header = name.into();
        self
    }
}

impl From<RequireFeature> for Requirement {
    fn from(value: RequireFeature) -> Self {
        Self::Feature(value)
    }
}

impl From<RequireTier> for Requirement {
    fn from(value: RequireTier) -> Self {
        Self::Tier(value)
    }
}

impl From<Consume> for Requirement {
    fn from(value: Consume) -> Self {
        Self::Consume(value)
    }
}

/// A requirement checked against the catalog.
#[derive(Debug)]
enum Check {
    Feature(String),
    Tier {
        tier: String,
        rank: usize,
    },
    Consume {
        metric: String,
        quantity: u64,
        header: HeaderName,
    },
}

/// What a guard let through, in the request's extensions for the handler
/// (`web::ReqData<Access>`). With several guards on a route, each adds what it learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The user the gate checked.
    pub user_id: String,
    /// The user's tier, when a feature or tier guard read it.
    pub tier: Option<String>,
    /// The consume's decision, when a [`Consume`] guard counted this request.
    pub usage: Option<UsageDecision>,
    /// True when a guard let the request through only because billing could not answer and
    /// the gate fails open.
    pub failed_open: bool,
}

/// A guard: actix-web middleware made by [`Gate::require`]. Cheap to clone (one per worker).
#[derive(Clone)]
pub struct Guard {
    gate: Arc<Inner>,
    check: Arc<Check>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("check", &self.check)
            .field("fail_open", &self.gate.fail_open)
            .finish()
    }
}

/// What one guard learnt about a request it lets through.
enum Learnt {
    Tier(String),
    Usage(UsageDecision),
    FailedOpen,
}

impl Guard {
    /// Decides `request`: what it learnt when the request may pass, else the refusal.
    async fn decide(&self, request: &ServiceRequest) -> Result<(String, Learnt), Refusal> {
        let user = match &self.gate.user {
            UserSource::Plain(user) => user(request.request()),
            UserSource::Extractor(extract) => extract(request.request()).await,
        }
        .ok_or(GateError::Unauthenticated)?;
        billing_domain::ids::check_id(&user)
            .map_err(|problem| GateError::InvalidUserId(problem.to_string()))?;
        match self.ask(request, &user).await {
            Err(Refusal::Error(error)) if error.is_unavailable() && self.gate.fail_open => {
                tracing::warn!(
                    user_id = user.as_str(),
                    check = ?self.check,
                    error = error.chain(),
                    "billing cannot answer; the gate fails open and lets the request through"
                );
                Ok((user, Learnt::FailedOpen))
            }
            Err(Refusal::Error(error)) if error.is_unavailable() => {
                tracing::warn!(
                    user_id = user.as_str(),
                    check = ?self.check,
                    error = error.chain(),
                    "billing cannot answer; the gate refuses the request (503)"
                );
                Err(Refusal::Error(error))
            }
            Err(Refusal::Error(error)) if error.status_code().is_server_error() => {
                tracing::error!(
                    user_id = user.as_str(),
                    check = ?self.check,
                    error = error.chain(),
                    "the gate cannot decide the request (500)"
                );
                Err(Refusal::Error(error))
            }
            outcome => outcome.map(|learnt| (user, learnt)),
        }
    }

    /// Asks the backend this guard's question about `user`.
    async fn ask(&self, request: &ServiceRequest, user: &str) -> Result<Learnt, Refusal> {
        let backend = &self.gate.backend;
        match &*self.check {
            Check::Feature(feature) => {
                let decision = backend.feature(user, feature).await?;
                if decision.allowed {
                    Ok(Learnt::Tier(decision.tier))
                } else {
                    Err(Refusal::Feature {
                        feature: feature.clone(),
                        tier: decision.tier,
                        reason: decision.reason,
                    })
                }
            }
            Check::Tier { tier, rank } => {
                let standing = backend.standing(user).await?;
                match self.gate.names.rank(&standing.tier) {
                    Some(theirs) if theirs >= *rank => Ok(Learnt::Tier(standing.tier)),
                    // A tier the catalog did not have at start-up ranks below every tier.
                    _ => Err(Refusal::Tier {
                        required: tier.clone(),
                        tier: standing.tier,
                        reason: standing.reason,
                    }),
                }
            }
            Check::Consume {
                metric,
                quantity,
                header,
            } => {
                let key = idempotency_key(request, header, &self.gate.request_id_header, metric)?;
                let decision = backend.consume(user, metric, *quantity, &key).await?;
                if decision.allowed {
                    Ok(Learnt::Usage(decision))
                } else {
                    Err(Refusal::Limit {
                        metric: metric.clone(),
                        used: decision.used,
                        limit: decision.limit,
                        retry_after: decision.period_ends_in,
                    })
                }
            }
        }
    }
}

/// Visible ASCII (space included), as billing accepts for idempotency keys.
fn is_key_text(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// The consume's idempotency key: `{metric}:` and the request's key header (400 when it is not
/// a usable key), else its request id header (when usable), else a fresh random id. The
/// metric keeps two consumes of one request apart.
fn idempotency_key(
    request: &ServiceRequest,
    header: &HeaderName,
    request_id_header: &HeaderName,
    metric: &str,
) -> Result<String, GateError> {
    let longest = MAX_KEY_LEN.saturating_sub(metric.len() + 1);
    if let Some(value) = request.headers().get(header) {
        let text = value
            .to_str()
            .ok()
            .filter(|v| is_key_text(v))
            .ok_or_else(|| {
                GateError::InvalidIdempotencyKey(format!(
                    "in {header} must be 1 to {longest} visible ASCII characters"
                ))
            })?;
        if text.len() > longest {
            return Err(GateError::InvalidIdempotencyKey(format!(
                "in {header} is {} bytes long; at most {longest} with the metric {metric}",
                text.len()
            )));
        }
        return Ok(format!("{metric}:{text}"));
    }
    let request_id = request
        .headers()
        .get(request_id_header)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_key_text(v) && v.len() <= longest);
    match request_id {
        Some(id) => Ok(format!("{metric}:{id}")),
        None => {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| GateError::unavailable(e.to_string()))?;
            Ok(format!("{metric}:gate_{}", hex::encode(bytes)))
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Guard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = GuardService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GuardService {
            service: Rc::new(service),
            guard: self.clone(),
        }))
    }
}

/// The running guard around one service (made by actix-web from a [`Guard`]).
pub struct GuardService<S> {
    service: Rc<S>,
    guard: Guard,
}

impl<S, B> Service<ServiceRequest> for GuardService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let guard = self.guard.clone();
        Box::pin(async move {
            match guard.decide(&request).await {
                Ok((user_id, learnt)) => {
                    record(&request, user_id, learnt);
                    let response = service.call(request).await?;
                    Ok(response.map_into_left_body())
                }
                Err(refusal) => {
                    let response = refusal.response();
                    Ok(request.into_response(response).map_into_right_body())
                }
            }
        })
    }
}

/// Adds what a guard learnt to the request's [`Access`].
fn record(request: &ServiceRequest, user_id: String, learnt: Learnt) {
    let mut extensions = request.extensions_mut();
    if extensions.get::<Access>().is_none() {
        extensions.insert(Access {
            user_id,
            tier: None,
            usage: None,
            failed_open: false,
        });
    }
    if let Some(access) = extensions.get_mut::<Access>() {
        match learnt {
            Learnt::Tier(tier) => access.tier = Some(tier),
            Learnt::Usage(usage) => access.usage = Some(usage),
            Learnt::FailedOpen => access.failed_open = true,
        }
    }
}
