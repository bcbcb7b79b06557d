//! The console's request handlers: sign-in and sign-out, the shared request context,
//! and the assets; the keys pages and their actions in `keys`, usage in `usage`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use maud::Markup;

use super::forms::Form;
use super::pages::Frame;
use super::security::{self, read_cookie};
use super::session::Permission;
use super::sessions::{tokens_equal, SessionView};
use super::Inner;
use crate::manage::{KeyView, ManageError};
use crate::store::record::KeyId;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(res) => return res,
        }
    };
}

mod keys;
mod usage;

pub(in crate::console) use keys::{create, delete, key, keys, revoke, roll, secret, update};
pub(in crate::console) use usage::usage;

pub(super) type Console = State<Arc<Inner>>;

/// The static headers on every response of the console.
pub(super) async fn harden(res: Response) -> Response {
    security::harden(res)
}

/// One request's rendering context: its nonce and session.
pub(super) struct Ctx<'a> {
    pub(super) inner: &'a Inner,
    nonce: String,
    session: Option<SessionView>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(inner: &'a Inner, session: Option<SessionView>) -> Self {
        Self {
            inner,
            nonce: security::nonce(),
            session,
        }
    }

    pub(super) fn frame(&self) -> Frame<'_> {
        Frame {
            base: &self.inner.base,
            nonce: &self.nonce,
            theme: &self.inner.theme,
            session: self.session.as_ref(),
        }
    }

    pub(super) fn html(&self, status: StatusCode, page: Markup) -> Response {
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

    pub(super) fn message(&self, status: StatusCode, title: &str, text: &str) -> Response {
        let back = self
            .session
            .as_ref()
            .map(|_| ("/keys", "Back to your keys"));
        self.html(status, self.frame().message(title, text, back))
    }

    pub(super) fn refused(&self, error: &ManageError) -> Response {
        let title = match error {
            ManageError::NotFound => "Key not found",
            ManageError::Store(_) => "Try again in a moment",
            _ => "That did not work",
        };
        self.message(error.status(), title, &error.to_string())
    }

    pub(super) fn forbidden(&self, permission: Permission) -> Response {
        let text = format!("This session does not have the {permission} permission.");
        self.message(StatusCode::FORBIDDEN, "Not allowed", &text)
    }

    pub(super) fn redirect(&self, path: &str) -> Response {
        let mut res = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{}{path}", self.inner.base)) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        res
    }

    pub(super) fn session(&self) -> &SessionView {
        self.session.as_ref().expect("checked by signed_in")
    }

    pub(super) fn now(&self) -> SystemTime {
        self.inner.manager.keygate().clock().now()
    }

    /// What the forms offer this session.
    pub(super) fn choices(&self) -> (Vec<String>, Vec<String>) {
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
pub(super) fn signed_in<'a>(inner: &'a Inner, headers: &HeaderMap) -> Result<Ctx<'a>, Response> {
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
pub(super) fn posted<'a>(
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

pub(super) fn key_id(ctx: &Ctx<'_>, id: &str) -> Result<KeyId, Response> {
    KeyId::parse(id).ok_or_else(|| ctx.refused(&ManageError::NotFound))
}

/// The key `id` as the session sees it, or the refusal.
pub(super) async fn visible_key(ctx: &Ctx<'_>, id: &str) -> Result<KeyView, Response> {
    let id = key_id(ctx, id)?;
    let actor = ctx.inner.actor(ctx.session());
    ctx.inner
        .acting(&actor)
        .get(&id)
        .await
        .map_err(|e| ctx.refused(&e))
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
        include_str!("../assets/console.css"),
    )
}

pub(super) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    )
}
