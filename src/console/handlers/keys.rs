//! The keys pages and their actions.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::header::HeaderMap;
use http::StatusCode;
use serde::Deserialize;

use super::{key_id, posted, signed_in, visible_key, Console};
use crate::console::forms;
use crate::console::pages::keys::{self as key_pages, FormChoices};
use crate::console::session::Permission;
use crate::manage::ListQuery;
use crate::store::KeyStatusFilter;

#[derive(Deserialize)]
pub(in crate::console) struct ListParams {
    status: Option<String>,
    cursor: Option<String>,
}

pub(in crate::console) async fn keys(
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

pub(in crate::console) async fn create(
    State(inner): Console,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(in crate::console) async fn key(
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

pub(in crate::console) async fn secret(
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

pub(in crate::console) async fn update(
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

pub(in crate::console) async fn roll(
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

pub(in crate::console) async fn revoke(
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

pub(in crate::console) async fn delete(
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
