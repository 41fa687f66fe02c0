//! ec2's operations.
