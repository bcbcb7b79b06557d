//! The console's pages, as maud templates: every value is escaped when it is written.

pub(crate) mod keys;
pub(crate) mod usage;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::sessions::SessionView;
use super::theme::Theme;

/// What every page needs around its content.
pub(crate) struct Frame<'a> {
    /// Where the console is mounted (`/console`).
    pub(crate) base: &'a str,
    /// This response's nonce for its style and script elements.
    pub(crate) nonce: &'a str,
    pub(crate) theme: &'a Theme,
    /// The signed-in session, for the header and the form token.
    pub(crate) session: Option<&'a SessionView>,
}

impl Frame<'_> {
    /// A path under the console.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The hidden form-token field every form carries.
    pub(crate) fn csrf(&self) -> Markup {
        html! {
            @if let Some(s) = self.session {
                input type="hidden" name="csrf" value=(s.csrf.as_str());
            }
        }
    }

    /// A whole page titled `title` around `content`.
    pub(crate) fn page(&self, title: &str, content: Markup) -> Markup {
        let theme = self.theme;
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    title { (title) " · " (theme.product_name) }
                    link rel="stylesheet" href=(self.url("/assets/console.css")) nonce=(self.nonce);
                    style nonce=(self.nonce) { (PreEscaped(theme.css())) }
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href=(self.url("/keys")) {
                            @if let Some(logo) = &theme.logo {
                                img src=(logo) alt="";
                            }
                            span { (theme.product_name) }
                        }
                        @if let Some(s) = self.session {
                            nav aria-label="Console" {
                                a href=(self.url("/keys")) { "Keys" }
                            }
                            span.who {
                                @if !s.grant.user.is_empty() { (s.grant.user) " · " }
                                (s.grant.account)
                                @if let Some(env) = s.grant.environment { " · " (env) }
                            }
                            form method="post" action=(self.url("/logout")) {
                                (self.csrf())
                                button.btn.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                    main #main tabindex="-1" { (content) }
                    script src=(self.url("/assets/console.js")) nonce=(self.nonce) {}
                }
            }
        }
    }

    /// A page that only says something (an error, a sign-out).
    pub(crate) fn message(&self, title: &str, text: &str, back: Option<(&str, &str)>) -> Markup {
        self.page(
            title,
            html! {
                h1 { (title) }
                div.card role="alert" {
                    p { (text) }
                    @if let Some((href, label)) = back {
                        p { a href=(self.url(href)) { (label) } }
                    }
                }
            },
        )
    }
}

/// A time as the pages show it: `2026-12-03 11:27 UTC`, or a dash.
pub(crate) fn when(rfc3339: Option<&str>) -> String {
    match rfc3339 {
        Some(t) if t.len() >= 16 => format!("{} {} UTC", &t[..10], &t[11..16]),
        Some(t) => t.to_owned(),
        None => "—".to_owned(),
    }
}
