//! Where log lines go and how they look: stderr, as text (colours only on a terminal) or, with
//! `LATCHKEY_LOG_FORMAT=json`, one JSON object per line for a log pipeline. Lines written while a
//! request is served carry its span, so `span.id` is the request id also sent as
//! `X-Request-Id`. The filter is `RUST_LOG` (default `info,sqlx=warn`).

use std::io::IsTerminal;

pub const FORMAT_VARIABLE: &str = "LATCHKEY_LOG_FORMAT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// The format `LATCHKEY_LOG_FORMAT` asks for; unset is text.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(FORMAT_VARIABLE).as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("text") => Ok(Self::Text),
            Ok("json") => Ok(Self::Json),
            Ok(other) => Err(format!("{FORMAT_VARIABLE}: '{other}' is not text or json")),
        }
    }
}

pub fn init(format: Format) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into());
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // The filter is the log lines' own, so the metrics layer (SQL statement times) hears sqlx
    // whatever the lines show.
    let lines = match format {
        Format::Json => lines.json().with_current_span(true).with_span_list(false).with_filter(filter).boxed(),
        // Escape codes only where a person reads them: not in files, journald or pipes.
        Format::Text => lines.with_ansi(std::io::stderr().is_terminal()).with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(lines).with(crate::metrics::store_timing()).init();
}
