//! `ValidateNonSpecialIP`, shared by a Service's external IPs and an EndpointSlice's addresses:
//! no unspecified, loopback (unless the lab allows it) or link-local address.

use std::net::IpAddr;

use crate::validation::{field::FieldError, format::parse_ip_sloppy, options::ValidationOptions};

/// `ValidateNonSpecialIP`: endpoints and external IPs may not be unspecified, loopback or link-local.
pub(crate) fn validate_non_special_ip(
    path: &str,
    v: &str,
    opts: &ValidationOptions,
    errs: &mut Vec<FieldError>,
) {
    let Some(ip) = parse_ip_sloppy(v) else {
        errs.push(FieldError::invalid(path, v, "must be a valid IP address"));
        return;
    };
    let (unspecified, loopback, link_local, ll_multicast) = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            (a.is_unspecified(), a.is_loopback(), a.is_link_local(), o[0] == 224 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(a) => {
            let seg = a.segments();
            (
                a.is_unspecified(),
                a.is_loopback(),
                seg[0] & 0xffc0 == 0xfe80,
                seg[0] >> 8 == 0xff && (seg[0] & 0x0f) == 0x02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(path, v, format!("may not be unspecified ({v})")));
    }
    if loopback && !opts.allow_loopback_endpoints {
        errs.push(FieldError::invalid(path, v, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
    }
    if link_local {
        errs.push(FieldError::invalid(
            path,
            v,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ll_multicast {
        errs.push(FieldError::invalid(
            path,
            v,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}
