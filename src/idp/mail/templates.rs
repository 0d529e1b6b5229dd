//! Message templates: built in, each replaceable by a file of the same name in the operator's
//! template directory. `{{name}}` is replaced by a value; in HTML templates values are escaped.

use std::path::Path;

use anyhow::Context;

/// The messages layer-idp sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A link to confirm an address (`verify.txt`, `verify.html`).
    Verify,
    /// A link to choose a new password (`reset.txt`, `reset.html`).
    Reset,
    /// Someone tried to sign up with a taken address (`signup_attempt.txt`, `.html`).
    SignupAttempt,
}

impl Template {
    const ALL: [Template; 3] = [Template::Verify, Template::Reset, Template::SignupAttempt];

    fn name(self) -> &'static str {
        match self {
            Template::Verify => "verify",
            Template::Reset => "reset",
            Template::SignupAttempt => "signup_attempt",
        }
    }

    fn defaults(self) -> (&'static str, &'static str) {
        match self {
            Template::Verify => (
                include_str!("templates/verify.txt"),
                include_str!("templates/verify.html"),
            ),
            Template::Reset => (
                include_str!("templates/reset.txt"),
                include_str!("templates/reset.html"),
            ),
            Template::SignupAttempt => (
                include_str!("templates/signup_attempt.txt"),
                include_str!("templates/signup_attempt.html"),
            ),
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

pub struct Templates {
    /// (text, html) per template, in [`Template::ALL`] order.
    bodies: Vec<(String, String)>,
}

impl Templates {
    /// The built-in templates, with any file of `dir` replacing its namesake.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut bodies = Vec::new();
        for template in Template::ALL {
            let (text, html) = template.defaults();
            let read = |ext: &str, default: &str| -> anyhow::Result<String> {
                match dir.map(|d| d.join(format!("{}.{ext}", template.name()))) {
                    Some(path) if path.exists() => std::fs::read_to_string(&path)
                        .with_context(|| format!("reading the mail template {}", path.display())),
                    _ => Ok(default.to_owned()),
                }
            };
            bodies.push((read("txt", text)?, read("html", html)?));
        }
        Ok(Self { bodies })
    }

    /// The text and HTML bodies with `vars` filled in.
    pub fn render(&self, template: Template, vars: &[(&str, &str)]) -> (String, String) {
        let (text, html) = &self.bodies[template.index()];
        let mut text = text.clone();
        let mut html = html.clone();
        for (name, value) in vars {
            let key = format!("{{{{{name}}}}}");
            text = text.replace(&key, value);
            html = html.replace(&key, &escape_html(value));
        }
        (text, html)
    }
}

pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fill_both_bodies_and_are_escaped_in_html() {
        let templates = Templates::load(None).unwrap();
        let (text, html) = templates.render(
            Template::Reset,
            &[
                ("link", "https://x.test/?a=1&b=2"),
                ("product_name", "Chat <Co>"),
                ("email", "a@b.c"),
                ("expires_minutes", "30"),
            ],
        );
        assert!(text.contains("https://x.test/?a=1&b=2"), "{text}");
        assert!(html.contains("https://x.test/?a=1&amp;b=2"), "{html}");
        assert!(html.contains("Chat &lt;Co&gt;"), "{html}");
        assert!(!text.contains("{{"), "{text}");
    }

    #[test]
    fn a_file_in_the_template_directory_replaces_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("verify.txt"), "Custom {{link}}").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let (text, html) = templates.render(Template::Verify, &[("link", "L")]);
        assert_eq!(text, "Custom L");
        assert!(
            html.contains("<a href=\"L\">"),
            "the HTML stays built in: {html}"
        );
    }
}
