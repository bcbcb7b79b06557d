//! The keys pages: the list with its create form, one key with its actions, and the
//! page that shows a new secret once.

use std::time::SystemTime;

use maud::{html, Markup};

use super::{when, Frame};
use crate::console::session::Permission;
use crate::manage::KeyView;

/// A key's status at `now`: revoked, disabled, expired or active.
pub(crate) fn status(key: &KeyView, now: SystemTime) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.disabled {
        "disabled"
    } else if key
        .expires_at
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .is_some_and(|t| t <= now)
    {
        "expired"
    } else {
        "active"
    }
}

fn status_badge(key: &KeyView, now: SystemTime) -> Markup {
    let s = status(key, now);
    html! { span class={"status status-" (s)} { (s) } }
}

/// The key's prefix and a short hint of it: `sk_live_AbCd…`.
fn hint(key: &KeyView) -> Markup {
    html! { code title="The key's prefix and first characters" { (key.start) "…" } }
}

fn scopes(key: &KeyView) -> Markup {
    html! {
        @if key.scopes.is_empty() { span.muted { "none" } }
        @for s in key.scopes.iter() { span.chip { (s.as_str()) } }
    }
}

fn ips(key: &KeyView) -> Markup {
    html! {
        @if key.ips.is_empty() { span.muted { "any address" } }
        @for net in key.ips.entries() { code { (net.to_string()) } " " }
    }
}

/// What a form offers: the scopes the session may grant and the environments it may
/// pick.
pub(crate) struct FormChoices<'a> {
    pub(crate) scopes: &'a [String],
    /// Empty when the session's environment is fixed.
    pub(crate) environments: &'a [String],
}

fn scope_boxes(choices: &FormChoices<'_>, checked: Option<&KeyView>) -> Markup {
    html! {
        fieldset {
            legend { "Scopes" }
            @if choices.scopes.is_empty() { span.muted { "This session may not grant any scope." } }
            @for (i, s) in choices.scopes.iter().enumerate() {
                label for={"scope-" (i)} {
                    input type="checkbox" id={"scope-" (i)} name="scopes" value=(s)
                        checked[checked.is_some_and(|k| k.scopes.contains(s))];
                    (s)
                }
            }
        }
    }
}

fn expiry_choice(id: &str, editing: bool) -> Markup {
    html! {
        div {
            label for=(id) { "Expiry" }
            select id=(id) name="expires_in" {
                @if editing { option value="keep" selected { "Keep as it is" } }
                option value="never" selected[!editing] { "Never (or the longest allowed)" }
                option value="7" { "In 7 days" }
                option value="30" { "In 30 days" }
                option value="90" { "In 90 days" }
                option value="365" { "In a year" }
                option value="date" { "On the date below" }
            }
            label.hint for={(id) "-on"} { "Expires on (UTC, end of day)" }
            input type="date" id={(id) "-on"} name="expires_on";
        }
    }
}

/// The list of keys, with the create form when the session may create.
pub(crate) fn list(
    frame: &Frame<'_>,
    keys: &[KeyView],
    next: Option<&str>,
    showing: &str,
    choices: &FormChoices<'_>,
    now: SystemTime,
) -> Markup {
    let may = |p| frame.session.is_some_and(|s| s.grant.allows(p));
    frame.page(
        "API keys",
        html! {
            h1 { "API keys" }
            section.card aria-labelledby="keys-heading" {
                div.actions {
                    h2 #keys-heading { "Your keys" }
                    nav aria-label="Which keys" {
                        a href=(frame.url("/keys")) aria-current=[(showing == "active").then_some("page")] { "Active" } " · "
                        a href=(frame.url("/keys?status=revoked")) aria-current=[(showing == "revoked").then_some("page")] { "Revoked" } " · "
                        a href=(frame.url("/keys?status=all")) aria-current=[(showing == "all").then_some("page")] { "All" }
                    }
                }
                @if keys.is_empty() {
                    p.muted #no-keys { "No keys here yet." }
                } @else {
                    div.table-wrap {
                        table #keys {
                            caption.sr-only { "API keys of this account" }
                            thead { tr {
                                th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Environment" }
                                th scope="col" { "Scopes" } th scope="col" .hide-sm { "IP allowlist" } th scope="col" { "Expires" }
                                th scope="col" { "Status" } th scope="col" .hide-sm { "Created" } th scope="col" { "Last used" }
                            } }
                            tbody {
                                @for k in keys {
                                    tr data-key-id=(k.id) {
                                        td { a href=(frame.url(&format!("/keys/{}", k.id))) { (k.name) } }
                                        td { (hint(k)) }
                                        td { @if let Some(e) = k.environment { (e) } @else { span.muted { "any" } } }
                                        td { (scopes(k)) }
                                        td.hide-sm { (ips(k)) }
                                        td { (when(k.expires_at.as_deref())) }
                                        td { (status_badge(k, now)) }
                                        td.hide-sm { (when(Some(&k.created_at))) }
                                        td { (when(k.last_used_at.as_deref())) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(cursor) = next {
                    p.pager { a href=(frame.url(&format!("/keys?status={showing}&cursor={}", form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()))) { "Next page →" } }
                }
            }
            @if may(Permission::CreateKeys) {
                section.card aria-labelledby="create-heading" {
                    h2 #create-heading { "Create a key" }
                    form.stack method="post" action=(frame.url("/keys")) {
                        (frame.csrf())
                        div {
                            label for="name" { "Name" }
                            input type="text" id="name" name="name" required maxlength="50" autocomplete="off";
                        }
                        @if !choices.environments.is_empty() {
                            div {
                                label for="environment" { "Environment" }
                                select id="environment" name="environment" {
                                    @for e in choices.environments { option value=(e) { (e) } }
                                }
                            }
                        }
                        (scope_boxes(choices, None))
                        div {
                            label for="ips" { "IP allowlist " span.hint { "(addresses or CIDR networks, one per line; empty for any)" } }
                            textarea id="ips" name="ips" rows="2" {}
                        }
                        (expiry_choice("expires", false))
                        div { button.btn type="submit" { "Create key" } }
                    }
                }
            }
        },
    )
}

/// One key: its details and the actions the session may take.
pub(crate) fn detail(
    frame: &Frame<'_>,
    key: &KeyView,
    choices: &FormChoices<'_>,
    usage: bool,
    now: SystemTime,
) -> Markup {
    let may = |p| frame.session.is_some_and(|s| s.grant.allows(p));
    let base = format!("/keys/{}", key.id);
    let live = key.revoked_at.is_none();
    frame.page(
        &key.name,
        html! {
            p { a href=(frame.url("/keys")) { "← All keys" } }
            h1 { (key.name) " " (status_badge(key, now)) }
            section.card aria-labelledby="details-heading" {
                h2 #details-heading { "Details" }
                table {
                    tbody {
                        tr { th scope="row" { "Key" } td { (hint(key)) } }
                        tr { th scope="row" { "Id" } td { code { (key.id) } } }
                        tr { th scope="row" { "Environment" } td { @if let Some(e) = key.environment { (e) } @else { "any" } } }
                        tr { th scope="row" { "Scopes" } td { (scopes(key)) } }
                        tr { th scope="row" { "IP allowlist" } td { (ips(key)) } }
                        tr { th scope="row" { "Expires" } td { (when(key.expires_at.as_deref())) } }
                        tr { th scope="row" { "Created" } td { (when(Some(&key.created_at))) } }
                        tr { th scope="row" { "Last used" } td { (when(key.last_used_at.as_deref())) } }
                        @if key.revoked_at.is_some() {
                            tr { th scope="row" { "Revoked" } td { (when(key.revoked_at.as_deref())) } }
                        }
                    }
                }
                @if usage && may(Permission::ReadUsage) {
                    p { a.btn.secondary href=(frame.url(&format!("{base}/usage"))) { "View usage" } }
                }
            }
            @if live && (may(Permission::RollKeys) || may(Permission::RevokeKeys)) {
                section.card aria-labelledby="actions-heading" {
                    h2 #actions-heading { "Actions" }
                    div.actions {
                        @if may(Permission::RollKeys) {
                            form #roll method="post" action=(frame.url(&format!("{base}/roll"))) {
                                (frame.csrf())
                                div {
                                    label for="grace" { "Old secret keeps working" }
                                    select id="grace" name="grace" {
                                        option value="0" { "Not at all" }
                                        option value="3600" selected { "For 1 hour" }
                                        option value="86400" { "For 24 hours" }
                                        option value="604800" { "For 7 days" }
                                    }
                                }
                                button.btn.secondary type="submit" { "Roll key" }
                            }
                        }
                        @if may(Permission::RevokeKeys) {
                            form #revoke method="post" action=(frame.url(&format!("{base}/revoke"))) {
                                (frame.csrf())
                                button.btn.danger type="submit" { "Revoke key" }
                            }
                        }
                    }
                }
            }
            @if live && may(Permission::UpdateKeys) {
                section.card aria-labelledby="edit-heading" {
                    h2 #edit-heading { "Edit" }
                    form.stack #edit method="post" action=(frame.url(&base)) {
                        (frame.csrf())
                        div {
                            label for="name" { "Name" }
                            input type="text" id="name" name="name" required maxlength="50" value=(key.name);
                        }
                        (scope_boxes(choices, Some(key)))
                        div {
                            label for="ips" { "IP allowlist " span.hint { "(one per line; empty for any)" } }
                            textarea id="ips" name="ips" rows="2" {
                                @for net in key.ips.entries() { (net.to_string()) "\n" }
                            }
                        }
                        (expiry_choice("expires", true))
                        div { button.btn type="submit" { "Save changes" } }
                    }
                }
            }
            @if may(Permission::DeleteKeys) {
                section.card aria-labelledby="delete-heading" {
                    h2 #delete-heading { "Delete" }
                    p.muted { "Deleting removes the key for good: its secret stops working and it leaves every list." }
                    form #delete method="post" action=(frame.url(&format!("{base}/delete"))) {
                        (frame.csrf())
                        button.btn.danger type="submit" { "Delete key" }
                    }
                }
            }
        },
    )
}

/// The page after a create or a roll: the secret, this once, or a note that it was shown.
pub(crate) fn secret(frame: &Frame<'_>, key: &KeyView, secret: Option<&str>) -> Markup {
    frame.page(
        "Your new key",
        html! {
            h1 { "Key “" (key.name) "”" }
            section.card {
                @if let Some(secret) = secret {
                    div.notice.warn role="alert" {
                        strong { "Copy this key now. " }
                        "It is shown only this once: keygate keeps only a hash of it, and neither you nor we can see it again."
                    }
                    div.secret {
                        output #secret aria-label="The new API key" { (secret) }
                        button.btn type="button" data-copy="secret" hidden { "Copy" }
                    }
                    p #copy-status.sr-only aria-live="polite" {}
                } @else {
                    div.notice #secret-gone {
                        "This key's secret was shown once and cannot be shown again. "
                        "If it was lost, roll the key to get a new one."
                    }
                }
                p { a href=(frame.url(&format!("/keys/{}", key.id))) { "Go to the key" } " · " a href=(frame.url("/keys")) { "All keys" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::theme::Theme;
    use crate::key::digest::KeyDigest;
    use crate::store::record::{KeyId, KeyRecord};

    #[test]
    fn a_key_name_with_a_script_tag_renders_as_text() {
        let now = SystemTime::now();
        let mut record = KeyRecord::new(
            KeyId::new("ak_1"),
            "acct_1".into(),
            KeyDigest::from_bytes([1; 32]),
            now,
        );
        record.name = "<script>alert(1)</script>".into();
        record.start = "sk_test_\"><img".into();
        let key = KeyView::from(&record);
        let theme = Theme::default();
        let frame = Frame {
            base: "/console",
            nonce: "n",
            theme: &theme,
            session: None,
        };
        let choices = FormChoices {
            scopes: &["<b>".to_owned()],
            environments: &[],
        };
        for html in [
            list(
                &frame,
                std::slice::from_ref(&key),
                None,
                "active",
                &choices,
                now,
            ),
            detail(&frame, &key, &choices, true, now),
            secret(&frame, &key, Some("<i>secret</i>")),
        ] {
            let html = html.into_string();
            assert!(!html.contains("<script>alert"), "{html}");
            assert!(!html.contains("\"><img"));
            assert!(!html.contains("<i>secret"));
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                    || html.contains("&lt;i&gt;secret")
            );
        }
    }

    #[test]
    fn status_reads_revoked_disabled_expired_and_active() {
        let now = SystemTime::now();
        let record = KeyRecord::new(
            KeyId::new("ak_1"),
            "acct_1".into(),
            KeyDigest::from_bytes([1; 32]),
            now,
        );
        let mut key = KeyView::from(&record);
        assert_eq!(status(&key, now), "active");
        key.expires_at = Some(crate::manage::rfc3339(now));
        assert_eq!(status(&key, now), "expired");
        key.disabled = true;
        assert_eq!(status(&key, now), "disabled");
        key.revoked_at = Some(crate::manage::rfc3339(now));
        assert_eq!(status(&key, now), "revoked");
    }
}
