//! `ecr-credential-provider`: reads a CredentialProviderRequest on stdin, writes the
//! CredentialProviderResponse on stdout, and on failure logs `Error running credential provider
//! plugin: <err>` (klog, stderr) and exits 1, as cloud-provider-aws's binary does.
//!
//! Its spans go to `OTEL_EXPORTER_OTLP_ENDPOINT` when set, under the trace in `TRACEPARENT`
//! (the OpenTelemetry environment-carrier convention), so the kubelet's pull span holds the
//! plugin, its IMDS calls and the ECR call.

use std::io::{Read as _, Write as _};

use netlab_credential_provider::{
    CredentialProviderRequest, credentials::Env, http::HttpClient, klog, plugin::Note,
};

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("ecr-credential-provider version {}", env!("CARGO_PKG_VERSION"));
        return std::process::ExitCode::SUCCESS;
    }
    // Two workers: flushing the spans at the end blocks one while the exporter runs on another.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            log(
                klog::Severity::Error,
                "main.go:361",
                &format!("Error running credential provider plugin: {e}"),
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run());
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(
                klog::Severity::Error,
                "main.go:361",
                &format!("Error running credential provider plugin: {e}"),
            );
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = Env::from_process();
    // Spans only: the plugin's stderr is klog's, which the kubelet copies into its log.
    let telemetry = env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|endpoint| {
        let args = netlab_telemetry::Args {
            otlp_endpoint: Some(endpoint.to_string()),
            log_format: netlab_telemetry::LogFormat::Text,
        };
        netlab_telemetry::init("ecr-credential-provider", "netlab_credential_provider", &args)
    });
    let guard = match telemetry {
        Some(Ok(g)) => Some(g),
        Some(Err(e)) => {
            log(klog::Severity::Warning, "main.go:350", &format!("Not exporting spans: {e}"));
            None
        }
        None => None,
    };
    let span = tracing::info_span!(
        "ecr-credential-provider",
        otel.kind = "internal",
        container.image.name = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    if let Some(tp) = env.get("TRACEPARENT") {
        netlab_telemetry::propagation::set_parent_from_traceparent(&span, tp);
    }
    let result = tracing::Instrument::instrument(answer(&env, &span), span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_message", e.as_str());
    }
    drop(span);
    // Flushes the spans before the process ends.
    drop(guard);
    result
}

async fn answer(env: &Env, span: &tracing::Span) -> Result<(), String> {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).map_err(|e| e.to_string())?;
    let request = CredentialProviderRequest::decode(&input).map_err(|e| e.to_string())?;
    span.record("container.image.name", request.image.as_str());
    let http = HttpClient::default();
    let mut note = |n: Note| match n {
        Note::Getting(image) => {
            log(klog::Severity::Info, "main.go:167", &format!("Getting creds for private image {image}"))
        }
        Note::NoRegion => log(
            klog::Severity::Warning,
            "main.go:83",
            "No region found in the image reference, the default region will be used. Please refer to AWS SDK documentation for configuration purpose.",
        ),
    };
    let response =
        netlab_credential_provider::get_credentials(&request, env, &http, jiff::Timestamp::now(), &mut note)
            .await
            .map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&response.encode()).and_then(|()| stdout.flush()).map_err(|e| e.to_string())
}

fn log(severity: klog::Severity, location: &str, message: &str) {
    let line = klog::line(severity, jiff::Timestamp::now(), std::process::id(), location, message);
    let _ = std::io::stderr().write_all(line.as_bytes());
}
