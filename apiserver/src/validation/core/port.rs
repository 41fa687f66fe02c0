//! The port checks Service, Pod and NetworkPolicy share: the supported protocols and
//! `ValidatePortNumOrName`.

use serde_json::Value;

use crate::validation::{
    field::FieldError,
    format::{is_valid_port_name, is_valid_port_num},
    json::{IntOrString, int_or_string},
};

pub(crate) const PORT_PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
/// `ValidatePortNumOrName`: a port number, or an IANA_SVC_NAME.
pub(crate) fn validate_port_num_or_name(port: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match int_or_string(port) {
        IntOrString::Int(n) => {
            for m in is_valid_port_num(n) {
                errs.push(FieldError::invalid(path, n, m));
            }
        }
        IntOrString::Str(name) => {
            for m in is_valid_port_name(name) {
                errs.push(FieldError::invalid(path, name, m));
            }
        }
    }
}
