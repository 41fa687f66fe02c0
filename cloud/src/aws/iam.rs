//! iam's operations.
