//! The console's look: a few CSS variables the host sets to match its own pages.

use std::fmt::Write as _;

/// Colours, font, product name and logo of the console's pages.
///
/// Each value becomes a CSS custom property (`--kg-accent`, `--kg-bg`, `--kg-fg`,
/// `--kg-muted`, `--kg-font`); values holding anything but letters, digits, spaces and
/// `# % ( ) , . - ' "` are ignored, so a theme cannot inject CSS. The logo is an image
/// URL on the host's own origin (the page's policy allows no other).
///
/// ```
/// use keygate::console::Theme;
///
/// let theme = Theme::default()
///     .accent("#0f766e")
///     .font("'Inter', system-ui, sans-serif")
///     .product_name("Acme API")
///     .logo("/static/acme.svg");
/// assert_eq!(theme.product_name, "Acme API");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Theme {
    /// Buttons, links and the succeeded series of charts.
    pub accent: String,
    /// Page background.
    pub background: String,
    /// Text.
    pub foreground: String,
    /// Secondary text and borders.
    pub muted: String,
    /// The font stack.
    pub font: String,
    /// Shown in the header and page titles.
    pub product_name: String,
    /// An image URL for the header, on the host's own origin.
    pub logo: Option<String>,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            accent: "#4f46e5".into(),
            background: "#f8fafc".into(),
            foreground: "#0f172a".into(),
            muted: "#64748b".into(),
            font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif".into(),
            product_name: "API keys".into(),
            logo: None,
        }
    }
}

impl Theme {
    /// Sets the accent colour.
    #[must_use]
    pub fn accent(mut self, colour: impl Into<String>) -> Self {
        self.accent = colour.into();
        self
    }

    /// Sets the background colour.
    #[must_use]
    pub fn background(mut self, colour: impl Into<String>) -> Self {
        self.background = colour.into();
        self
    }

    /// Sets the text colour.
    #[must_use]
    pub fn foreground(mut self, colour: impl Into<String>) -> Self {
        self.foreground = colour.into();
        self
    }

    /// Sets the colour of secondary text and borders.
    #[must_use]
    pub fn muted(mut self, colour: impl Into<String>) -> Self {
        self.muted = colour.into();
        self
    }

    /// Sets the font stack.
    #[must_use]
    pub fn font(mut self, font: impl Into<String>) -> Self {
        self.font = font.into();
        self
    }

    /// Sets the product name.
    #[must_use]
    pub fn product_name(mut self, name: impl Into<String>) -> Self {
        self.product_name = name.into();
        self
    }

    /// Sets the logo's URL.
    #[must_use]
    pub fn logo(mut self, url: impl Into<String>) -> Self {
        self.logo = Some(url.into());
        self
    }

    /// The `:root { … }` rule setting the variables.
    pub(crate) fn css(&self) -> String {
        let mut css = String::from(":root{");
        for (name, value) in [
            ("accent", &self.accent),
            ("bg", &self.background),
            ("fg", &self.foreground),
            ("muted", &self.muted),
            ("font", &self.font),
        ] {
            if is_safe_css_value(value) {
                let _ = write!(css, "--kg-{name}:{value};");
            }
        }
        css.push('}');
        css
    }
}

/// Whether `value` can stand as a CSS value without closing the rule or the element.
fn is_safe_css_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 200
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " #%(),.-'\"".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_theme_values_are_dropped() {
        let css = Theme::default()
            .accent("red;}</style><script>alert(1)</script>")
            .font("'Inter', sans-serif")
            .css();
        assert!(!css.contains("script"));
        assert!(!css.contains("--kg-accent"));
        assert!(css.contains("--kg-font:'Inter', sans-serif;"));
    }
}
