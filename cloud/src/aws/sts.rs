//! sts's operations.
