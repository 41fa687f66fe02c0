//! IMDS client (to be written).
