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
    let registry = tracing_subscriber::registry().with(lines).with(crate::metrics::store_timing());
    #[cfg(feature = "otlp")]
    let registry = registry.with(otlp::layer());
    registry.init();
}

/// Sends what is still buffered (OpenTelemetry spans) before the process exits.
pub fn flush() {
    #[cfg(feature = "otlp")]
    otlp::shutdown();
}

/// OpenTelemetry trace export (cargo feature `otlp`): with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, every span — the request span with its method,
/// path and request id, and those inside it — goes to that collector over OTLP/HTTP
/// (protobuf), in batches, named by `OTEL_SERVICE_NAME` (default `latchkey`). Unset, nothing is
/// exported and nothing else changes.
#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::OnceLock;
    use tracing_subscriber::Layer;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    pub fn layer<S>() -> Option<impl tracing_subscriber::Layer<S>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let configured = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()));
        if !configured {
            return None;
        }
        // The exporter reads the endpoint, headers and timeout from the standard variables.
        let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("latchkey: OpenTelemetry export is off: {e}");
                return None;
            }
        };
        let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "latchkey".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(name).build())
            .build();
        let tracer = provider.tracer("latchkey");
        let _ = PROVIDER.set(provider);
        // Latchkey's own spans and events at INFO and above: the request span and what happens
        // inside it, not every library's debug spans.
        let ours = tracing_subscriber::filter::Targets::new().with_target("latchkey", tracing::Level::INFO);
        Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(ours))
    }

    pub fn shutdown() {
        if let Some(p) = PROVIDER.get() {
            let _ = p.shutdown();
        }
    }
}
