//! ECR (awsJson1_1, `AmazonEC2ContainerRegistry_V20150921`): authorization tokens, repositories
//! and their images, and the registry host's Basic auth.

use serde::{Deserialize, Serialize};

/// ECR's repositories and issued tokens.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct EcrState {}
