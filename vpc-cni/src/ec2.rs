//! EC2 client (to be written).
