//! The console's request handlers: sign-in, the keys pages and their actions, usage.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use maud::Markup;
use serde::Deserialize;

use super::forms::{self, Form};
use super::pages::keys::{self as key_pages, FormChoices};
use super::pages::usage::LogState;
use super::pages::usage::{self as usage_page, UsageFilters};
use super::pages::Frame;
use super::security::{self, read_cookie};
use super::session::{tokens_equal, Permission, SessionView};
use super::usage::{Granularity, LogQuery, UsageBucket};
use super::Inner;
use crate::manage::{KeyView, ListQuery, ManageError};
use crate::store::record::KeyId;
use crate::store::KeyStatusFilter;

type Console = State<Arc<Inner>>;

/// The static headers on every response of the console.
pub(super) async fn harden(res: Response) -> Response {
    security::harden(res)
}

/// One request's rendering context: its nonce and session.
struct Ctx<'a> {
    inner: &'a Inner,
    nonce: String,
    session: Option<SessionView>,
}

impl<'a> Ctx<'a> {
    fn new(inner: &'a Inner, session: Option<SessionView>) -> Self {
        Self {
            inner,
            nonce: security::nonce(),
            session,
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            base: &self.inner.base,
            nonce: &self.nonce,
            theme: &self.inner.theme,
            session: self.session.as_ref(),
        }
    }

    fn html(&self, status: StatusCode, page: Markup) -> Response {
        let mut res = (status, page.into_string()).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&security::csp(&self.nonce)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        res
    }

    fn message(&self, status: StatusCode, title: &str, text: &str) -> Response {
        let back = self
            .session
            .as_ref()
            .map(|_| ("/keys", "Back to your keys"));
        self.html(status, self.frame().message(title, text, back))
    }

    fn refused(&self, error: &ManageError) -> Response {
        let title = match error {
            ManageError::NotFound => "Key not found",
            ManageError::Store(_) => "Try again in a moment",
            _ => "That did not work",
        };
        self.message(error.status(), title, &error.to_string())
    }

    fn forbidden(&self, permission: Permission) -> Response {
        let text = format!("This session does not have the {permission} permission.");
        self.message(StatusCode::FORBIDDEN, "Not allowed", &text)
    }

    fn redirect(&self, path: &str) -> Response {
        let mut res = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{}{path}", self.inner.base)) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        res
    }

    fn session(&self) -> &SessionView {
        self.session.as_ref().expect("checked by signed_in")
    }

    fn now(&self) -> SystemTime {
        self.inner.manager.keygate().clock().now()
    }

    /// What the forms offer this session.
    fn choices(&self) -> (Vec<String>, Vec<String>) {
        let s = self.session();
        let scopes = s
            .grant
            .grantable_scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let gate = self.inner.manager.keygate();
        let mut envs: Vec<String> = match (s.grant.environment, gate.environment()) {
            (None, None) => gate
                .format()
                .prefixes()
                .iter()
                .filter_map(|p| p.environment())
                .map(|e| e.as_str().to_owned())
                .collect(),
            _ => Vec::new(),
        };
        envs.sort();
        envs.dedup();
        (scopes, envs)
    }
}

/// The request's live session, or the page that says there is none.
fn signed_in<'a>(inner: &'a Inner, headers: &HeaderMap) -> Result<Ctx<'a>, Response> {
    let now = inner.manager.keygate().clock().now();
    match read_cookie(headers).and_then(|c| inner.sessions.find(c, now)) {
        Some(s) => Ok(Ctx::new(inner, Some(s))),
        None => {
            let ctx = Ctx::new(inner, None);
            let mut res = ctx.message(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your console session has ended or was never started. Open the console again from your account.",
            );
            // Only a cookie that came with the request and has ended is cleared: a
            // cross-site request, which carries no cookie, must not sign the user out.
            if read_cookie(headers).is_some() {
                if let Ok(v) = HeaderValue::from_str(&security::clear_cookie(
                    cookie_path(inner),
                    inner.secure_cookies,
                )) {
                    res.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            Err(res)
        }
    }
}

fn cookie_path(inner: &Inner) -> &str {
    if inner.base.is_empty() {
        "/"
    } else {
        &inner.base
    }
}

/// A signed-in form post with a valid form token, or its refusal.
fn posted<'a>(
    inner: &'a Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Ctx<'a>, Form), Response> {
    let ctx = signed_in(inner, headers)?;
    let form = Form::parse(body);
    let token_ok = form
        .get("csrf")
        .is_some_and(|t| tokens_equal(t, ctx.session().csrf.as_str()));
    if !token_ok || security::is_cross_site(headers) {
        return Err(ctx.message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from this console session, so nothing was changed. Reload the page and try again.",
        ));
    }
    Ok((ctx, form))
}

fn key_id(ctx: &Ctx<'_>, id: &str) -> Result<KeyId, Response> {
    KeyId::parse(id).ok_or_else(|| ctx.refused(&ManageError::NotFound))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(res) => return res,
        }
    };
}

pub(super) async fn index(State(inner): Console) -> Response {
    Ctx::new(&inner, None).redirect("/keys")
}

pub(super) async fn not_found(State(inner): Console, headers: HeaderMap) -> Response {
    let ctx = signed_in(&inner, &headers).unwrap_or_else(|_| Ctx::new(&inner, None));
    ctx.message(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}

pub(super) async fn login(State(inner): Console, Path(token): Path<String>) -> Response {
    let ctx = Ctx::new(&inner, None);
    let Some((cookie, expires)) = inner.sessions.exchange(&token, ctx.now()) else {
        return ctx.message(
            StatusCode::UNAUTHORIZED,
            "Link expired",
            "This sign-in link was already used or has expired. Open the console again from your account.",
        );
    };
    let max_age = expires
        .duration_since(ctx.now())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mut res = ctx.redirect("/keys");
    let value =
        security::session_cookie(&cookie, cookie_path(&inner), inner.secure_cookies, max_age);
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

pub(super) async fn logout(State(inner): Console, headers: HeaderMap, body: Bytes) -> Response {
    let (ctx, _) = tri!(posted(&inner, &headers, &body));
    inner.sessions.revoke(&ctx.session().id);
    let ctx = Ctx::new(&inner, None);
    let mut res = ctx.message(
        StatusCode::OK,
        "Signed out",
        "You are signed out of the console.",
    );
    if let Ok(v) = HeaderValue::from_str(&security::clear_cookie(
        cookie_path(&inner),
        inner.secure_cookies,
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    cursor: Option<String>,
}

pub(super) async fn keys(
    State(inner): Console,
    headers: HeaderMap,
    Query(q): Query<ListParams>,
) -> Response {
    let ctx = tri!(signed_in(&inner, &headers));
    if !ctx.session().grant.allows(Permission::ReadKeys) {
        return ctx.forbidden(Permission::ReadKeys);
    }
    let (showing, filter) = match q.status.as_deref() {
        Some("revoked") => ("revoked", KeyStatusFilter::Revoked),
        Some("all") => ("all", KeyStatusFilter::All),
        _ => ("active", KeyStatusFilter::Active),
    };
    let mut query = ListQuery::new().status(filter);
    if let Some(c) = q.cursor.filter(|c| !c.is_empty()) {
        query = query.cursor(c);
    }
    let actor = inner.actor(ctx.session());
    let page = match inner.acting(&actor).list(&query).await {
        Ok(p) => p,
        Err(e) => return ctx.refused(&e),
    };
    let (scopes, environments) = ctx.choices();
    let choices = FormChoices {
        scopes: &scopes,
        environments: &environments,
    };
    let html = key_pages::list(
        &ctx.frame(),
        &page.data,
        page.next_cursor.as_deref(),
        showing,
        &choices,
        ctx.now(),
    );
    ctx.html(StatusCode::OK, html)
}

pub(super) async fn create(State(inner): Console, headers: HeaderMap, body: Bytes) -> Response {
    let (ctx, form) = tri!(posted(&inner, &headers, &body));
    if !ctx.session().grant.allows(Permission::CreateKeys) {
        return ctx.forbidden(Permission::CreateKeys);
    }
    let (scopes, environments) = ctx.choices();
    let new = match forms::new_key(&form, &scopes, &environments, ctx.now()) {
        Ok(n) => n,
        Err(text) => return ctx.message(StatusCode::BAD_REQUEST, "Check the form", &text),
    };
    let actor = inner.actor(ctx.session());
    match inner.acting(&actor).create(new).await {
        Ok(created) => {
            let id = created.view.id.clone();
            inner
                .sessions
                .set_flash(&ctx.session().id, id.clone(), created.key.expose_secret());
            ctx.redirect(&format!("/keys/{id}/secret"))
        }
        Err(e) => ctx.refused(&e),
    }
}

/// The key `id` as the session sees it, or the refusal.
async fn visible_key(ctx: &Ctx<'_>, id: &str) -> Result<KeyView, Response> {
    let id = key_id(ctx, id)?;
    let actor = ctx.inner.actor(ctx.session());
    ctx.inner
        .acting(&actor)
        .get(&id)
        .await
        .map_err(|e| ctx.refused(&e))
}

pub(super) async fn key(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = tri!(signed_in(&inner, &headers));
    if !ctx.session().grant.allows(Permission::ReadKeys) {
        return ctx.forbidden(Permission::ReadKeys);
    }
    let key = tri!(visible_key(&ctx, &id).await);
    let (scopes, environments) = ctx.choices();
    let choices = FormChoices {
        scopes: &scopes,
        environments: &environments,
    };
    let html = key_pages::detail(
        &ctx.frame(),
        &key,
        &choices,
        inner.usage.is_some(),
        ctx.now(),
    );
    ctx.html(StatusCode::OK, html)
}

pub(super) async fn secret(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = tri!(signed_in(&inner, &headers));
    let key = tri!(visible_key(&ctx, &id).await);
    let secret = inner.sessions.take_flash(&ctx.session().id, &key.id);
    let html = key_pages::secret(&ctx.frame(), &key, secret.as_ref().map(|s| s.as_str()));
    ctx.html(StatusCode::OK, html)
}

pub(super) async fn update(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (ctx, form) = tri!(posted(&inner, &headers, &body));
    if !ctx.session().grant.allows(Permission::UpdateKeys) {
        return ctx.forbidden(Permission::UpdateKeys);
    }
    let id = tri!(key_id(&ctx, &id));
    let (scopes, _) = ctx.choices();
    let update = match forms::update(&form, &scopes, ctx.now()) {
        Ok(u) => u,
        Err(text) => return ctx.message(StatusCode::BAD_REQUEST, "Check the form", &text),
    };
    let actor = inner.actor(ctx.session());
    match inner.acting(&actor).update(&id, update).await {
        Ok(_) => ctx.redirect(&format!("/keys/{id}")),
        Err(e) => ctx.refused(&e),
    }
}

pub(super) async fn roll(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (ctx, form) = tri!(posted(&inner, &headers, &body));
    if !ctx.session().grant.allows(Permission::RollKeys) {
        return ctx.forbidden(Permission::RollKeys);
    }
    let id = tri!(key_id(&ctx, &id));
    let grace = match forms::grace(&form) {
        Ok(g) => g,
        Err(text) => return ctx.message(StatusCode::BAD_REQUEST, "Check the form", &text),
    };
    let actor = inner.actor(ctx.session());
    match inner.acting(&actor).roll(&id, grace).await {
        Ok(rolled) => {
            inner
                .sessions
                .set_flash(&ctx.session().id, id.clone(), rolled.key.expose_secret());
            ctx.redirect(&format!("/keys/{id}/secret"))
        }
        Err(e) => ctx.refused(&e),
    }
}

pub(super) async fn revoke(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (ctx, _) = tri!(posted(&inner, &headers, &body));
    if !ctx.session().grant.allows(Permission::RevokeKeys) {
        return ctx.forbidden(Permission::RevokeKeys);
    }
    let id = tri!(key_id(&ctx, &id));
    let actor = inner.actor(ctx.session());
    match inner.acting(&actor).revoke(&id).await {
        Ok(_) => ctx.redirect(&format!("/keys/{id}")),
        Err(e) => ctx.refused(&e),
    }
}

pub(super) async fn delete(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (ctx, _) = tri!(posted(&inner, &headers, &body));
    if !ctx.session().grant.allows(Permission::DeleteKeys) {
        return ctx.forbidden(Permission::DeleteKeys);
    }
    let id = tri!(key_id(&ctx, &id));
    let actor = inner.actor(ctx.session());
    match inner.acting(&actor).delete(&id).await {
        Ok(()) => ctx.redirect("/keys"),
        Err(e) => ctx.refused(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct UsageParams {
    by: Option<String>,
    outcome: Option<String>,
}

pub(super) async fn usage(
    State(inner): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<UsageParams>,
) -> Response {
    let ctx = tri!(signed_in(&inner, &headers));
    if !ctx.session().grant.allows(Permission::ReadUsage) {
        return ctx.forbidden(Permission::ReadUsage);
    }
    if !inner.has_usage() {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "Usage is not connected to this console.",
        );
    }
    let key = tri!(visible_key(&ctx, &id).await);
    let granularity = match q.by.as_deref() {
        Some("day") => Granularity::Day,
        _ => Granularity::Hour,
    };
    let outcome = q.outcome.filter(|o| {
        !o.is_empty() && o.len() <= 64 && o.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    });
    let filters = UsageFilters {
        granularity,
        outcome: outcome.as_deref().unwrap_or(""),
    };
    let chart = chart_of(&ctx, &key, granularity).await;
    let log = match &inner.usage {
        None => LogState::NotConnected,
        Some(source) => {
            let query = LogQuery {
                key: Some(key.id.clone()),
                outcome: outcome.clone(),
                since: Some(ctx.now() - granularity.width() * granularity.buckets() as u32),
                limit: 50,
            };
            match source.log(&ctx.session().grant.account, &query).await {
                Ok(entries) => LogState::Entries(entries),
                Err(e) => {
                    tracing::error!(target: "keygate", error = %e, "console usage source failed");
                    LogState::Unavailable
                }
            }
        }
    };
    let status = if chart.is_none() || matches!(log, LogState::Unavailable) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let html = usage_page::page(&ctx.frame(), &key, &filters, chart.as_deref(), &log);
    ctx.html(status, html)
}

/// The key's chart buckets: from the gate's usage counters when it counts usage
/// (confined like every management read), otherwise from the connected source; `None`
/// when they are unavailable.
async fn chart_of(
    ctx: &Ctx<'_>,
    key: &KeyView,
    granularity: Granularity,
) -> Option<Vec<UsageBucket>> {
    let now = ctx.now();
    let last = granularity.floor(now);
    let since = last - granularity.width() * (granularity.buckets() as u32 - 1);
    let until = last + granularity.width();
    let inner = ctx.inner;
    if inner.manager.keygate().usage_counters().is_some() {
        let query = crate::activity::UsageQuery::new(match granularity {
            Granularity::Hour => crate::activity::Granularity::Hour,
            Granularity::Day => crate::activity::Granularity::Day,
        })
        .from(since)
        .to(until);
        let actor = inner.actor(ctx.session());
        return match inner.acting(&actor).usage(&key.id, &query).await {
            Ok(buckets) => Some(
                buckets
                    .into_iter()
                    .map(|b| UsageBucket {
                        start: Some(b.start),
                        outcomes: b
                            .outcomes
                            .iter()
                            .map(|(o, n)| (o.code().to_owned(), *n))
                            .collect(),
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::error!(target: "keygate", error = %e, "console usage counters unreadable");
                None
            }
        };
    }
    let source = inner.usage.as_ref()?;
    let account = &ctx.session().grant.account;
    match source
        .series(account, &key.id, granularity, since, until)
        .await
    {
        Ok(series) => Some(series),
        Err(e) => {
            tracing::error!(target: "keygate", error = %e, "console usage source failed");
            None
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

pub(super) async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

pub(super) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}
