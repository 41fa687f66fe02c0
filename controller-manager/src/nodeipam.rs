//! Placeholder: written next.

use tokio_util::sync::CancellationToken;

use crate::{Context, Result};

/// Runs the controller until `shutdown`.
pub async fn run(_ctx: Context, shutdown: CancellationToken) -> Result<()> {
    shutdown.cancelled().await;
    Ok(())
}
