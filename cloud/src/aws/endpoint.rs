//! The HTTP edge of the AWS endpoint.
