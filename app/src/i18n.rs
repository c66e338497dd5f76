//! The one translation layer: every string the interface shows comes from
//! `locales/*.yml` through [`t`] (rust-i18n embeds the files at compile time,
//! so the browser bundle carries them too).

use leptos::prelude::*;
use osteo_trial::domain::Locale;

/// The language of the page being rendered, provided as context by [`crate::App`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang(pub Locale);

/// The current language (English where none was provided).
pub fn lang() -> Locale {
    use_context::<Lang>().map(|l| l.0).unwrap_or_default()
}

/// Translates `key` into the current language.
pub fn t(key: &str) -> String {
    tl(lang(), key)
}

/// Translates `key` into `locale`.
pub fn tl(locale: Locale, key: &str) -> String {
    rust_i18n::t!(key, locale = locale.tag()).into_owned()
}

/// Translates `key` and fills its `%{name}` placeholders.
pub fn t_with(key: &str, args: &[(&str, &str)]) -> String {
    let mut s = t(key);
    for (name, value) in args {
        s = s.replace(&format!("%{{{name}}}"), value);
    }
    s
}

/// The language a request asks for: the `lang` cookie (set by the language
/// switch and at sign-in from the user's saved choice), else the browser's
/// `Accept-Language`.
#[cfg(feature = "ssr")]
pub fn request_locale(headers: &http::HeaderMap) -> Locale {
    let from_cookie = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix("lang="))
        .find_map(|v| v.parse::<Locale>().ok());
    from_cookie.unwrap_or_else(|| {
        headers
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .map(Locale::negotiate)
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key given twice in a file silently takes one of its texts.
    #[test]
    fn no_key_is_given_twice() {
        for (name, file) in [
            ("en.yml", include_str!("../locales/en.yml")),
            ("zh-CN.yml", include_str!("../locales/zh-CN.yml")),
        ] {
            let mut seen = std::collections::HashSet::new();
            for line in file.lines() {
                let Some((key, _)) = line.split_once(':') else {
                    continue;
                };
                if key.starts_with([' ', '#', '_']) || key.trim().is_empty() {
                    continue;
                }
                assert!(seen.insert(key.to_string()), "{name} gives {key} twice");
            }
        }
    }

    #[test]
    fn every_key_is_translated_in_both_languages() {
        let en = include_str!("../locales/en.yml");
        for line in en.lines() {
            let Some((key, _)) = line.split_once(':') else {
                continue;
            };
            if key.starts_with(' ')
                || key.starts_with('#')
                || key.starts_with('_')
                || key.trim().is_empty()
            {
                continue;
            }
            let key = key.trim();
            let english = tl(Locale::En, key);
            let chinese = tl(Locale::ZhCn, key);
            assert_ne!(english, key, "missing English text for {key}");
            assert_ne!(chinese, key, "missing Chinese text for {key}");
            // The product's name is the same in both languages.
            if key != "app.name" {
                assert_ne!(
                    chinese, english,
                    "the Chinese text of {key} is the English one"
                );
            }
        }
    }
}
