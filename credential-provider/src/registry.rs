//! Which registry an image names and, for an ECR private registry, which region its token comes
//! from: `<12-digit account>.dkr.ecr.<region>.amazonaws.com`, and the variants the upstream
//! plugin's host pattern accepts (`dkr-ecr`, `-fips`, `.amazonaws.com.cn`, `.amazonaws.eu`,
//! `on.aws`, the ISO partitions). ECR Public's hosts are told apart, though the lab serves no
//! ECR Public.

/// ECR Public's registry hosts.
pub const ECR_PUBLIC_HOSTS: &[&str] = &["public.ecr.aws", "ecr-public.aws.com"];

/// The DNS suffixes of ECR private registries, per partition.
const ECR_SUFFIXES: &[&str] = &[
    "amazonaws.com",
    "amazonaws.com.cn",
    "amazonaws.eu",
    "on.aws",
    "on.amazonwebservices.com.cn",
    "sc2s.sgov.gov",
    "c2s.ic.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];

/// An ECR private registry host, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    /// The registry (account) id.
    pub registry_id: String,
    /// Whether it is the FIPS endpoint (`dkr.ecr-fips`).
    pub fips: bool,
    /// The region.
    pub region: String,
    /// The partition's DNS suffix.
    pub suffix: String,
}

/// The host of an image reference, as the Go plugin reads it (`url.Parse("https://" + image)`
/// then `Hostname()`): the part before the first `/`, without a port.
pub fn host_of(image: &str) -> Result<String, String> {
    let rest = image.split_once("://").map_or(image, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.contains(char::is_whitespace) || authority.contains(['%', '\\']) {
        return Err(format!(
            "error parsing image reference https://{rest}: parse \"https://{rest}\": invalid character in host name"
        ));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    Ok(host.to_string())
}

/// Reads `host` as an ECR private registry (the upstream plugin's `ecrPrivateHostPattern`).
pub fn ecr_private_host(host: &str) -> Option<EcrHost> {
    let (registry_id, rest) = host.split_once('.')?;
    if registry_id.len() != 12 || !registry_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix("dkr")?;
    let rest = rest.strip_prefix('.').or_else(|| rest.strip_prefix('-'))?;
    let rest = rest.strip_prefix("ecr")?;
    let (fips, rest) = match rest.strip_prefix("-fips") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.strip_prefix('.')?;
    let (region, suffix) = rest.split_once('.')?;
    let region_ok = region.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (region_ok && ECR_SUFFIXES.contains(&suffix)).then(|| EcrHost {
        registry_id: registry_id.to_string(),
        fips,
        region: region.to_string(),
        suffix: suffix.to_string(),
    })
}

/// The region of an ECR private host, or None for any other host (the plugin then warns and
/// lets the SDK's default region apply).
pub fn region_of(host: &str) -> Option<String> {
    ecr_private_host(host).map(|h| h.region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_as_go_reads_them() {
        assert_eq!(
            host_of("123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx").unwrap(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            host_of("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(host_of("registry.local:5000/team/app").unwrap(), "registry.local");
        assert_eq!(host_of("https://public.ecr.aws/nginx/nginx").unwrap(), "public.ecr.aws");
        assert!(host_of("bad host/x").is_err());
    }

    #[test]
    fn ecr_private_hosts_and_their_regions() {
        let h = ecr_private_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        assert_eq!((h.registry_id.as_str(), h.region.as_str(), h.fips), ("123456789012", "us-east-1", false));
        assert_eq!(
            region_of("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").as_deref(),
            Some("us-gov-west-1")
        );
        assert_eq!(region_of("123456789012.dkr-ecr.eu-west-1.on.aws").as_deref(), Some("eu-west-1"));
        assert_eq!(
            region_of("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(
            region_of("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov").as_deref(),
            Some("us-iso-east-1")
        );
        // Not ECR private: wrong account length, ECR Public, another suffix, no region.
        assert_eq!(region_of("12345678901.dkr.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(region_of("public.ecr.aws"), None);
        assert_eq!(region_of("123456789012.dkr.ecr.us-east-1.example.com"), None);
        assert_eq!(region_of("123456789012.dkr.ecr.amazonaws.com"), None);
        assert_eq!(region_of("docker.io"), None);
    }
}
