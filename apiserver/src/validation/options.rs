//! The switches validation takes from the apiserver's flags, passed down with every call as
//! upstream passes `PodValidationOptions`, rather than read from process-wide state: two
//! apiservers in one process (tests, benches) may validate differently.

/// What a validation call may allow beyond what upstream allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// `--allow-loopback-endpoints`: EndpointSlice addresses (and Service external IPs) may be
    /// loopback. Native-mode labs need it, as every node lives on 127.0.0.0/8; a real apiserver
    /// refuses them ("may not be in the loopback range").
    pub allow_loopback_endpoints: bool,
}
