//! A short readable name for a `User-Agent` ("Firefox 128 on Linux"), for the sessions page.
//! Parsed simply on purpose: the person recognises their browser, nothing decides on it.

/// Browsers in the order their tokens must be tested: Edge and Opera also say "Chrome", Chrome
/// also says "Safari".
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),
    ("curl/", "curl"),
];

const SYSTEMS: &[(&str, &str)] = &[
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

/// "Browser major-version on system", as much of it as the header tells.
pub fn summary(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|s| !s.trim().is_empty()) else { return "Unknown browser".into() };
    let browser = BROWSERS.iter().find_map(|(token, name)| {
        let at = ua.find(token)?;
        let version: String = ua[at + token.len()..].chars().take_while(char::is_ascii_digit).collect();
        Some(if version.is_empty() { name.to_string() } else { format!("{name} {version}") })
    });
    let system = SYSTEMS.iter().find(|(token, _)| ua.contains(token)).map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b,
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => ua.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn common_browsers_read_as_people_know_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(summary(Some(firefox)), "Firefox 128 on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        assert_eq!(summary(Some(chrome)), "Chrome 126 on Windows");
        let edge = format!("{chrome} Edg/126.0.2592.87");
        assert_eq!(summary(Some(&edge)), "Edge 126 on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(summary(Some(safari)), "Safari 17 on iPhone");
        assert_eq!(summary(None), "Unknown browser");
        assert_eq!(summary(Some("TestAgent/1")), "TestAgent/1");
    }
}
