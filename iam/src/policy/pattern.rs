//! IAM's wildcards: `*` matches any run of characters (including none and including `:` and
//! `/`), `?` matches exactly one. Actions compare ignoring case, ARNs and strings exactly.

/// Whether `text` matches the IAM wildcard `pattern`, exactly (case-sensitive).
pub fn matches(pattern: &str, text: &str) -> bool {
    netlab_glob::matches(pattern, text)
}

/// Whether `text` matches `pattern` ignoring case, as IAM compares action names.
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_lowercase(), &text.to_lowercase())
}

/// Whether an ARN matches an ARN pattern as `ArnLike` compares them: the six colon-separated
/// parts (`arn:partition:service:region:account:resource`) one by one, each with wildcards. The
/// resource part keeps any further colons. A value that is not six parts is compared whole
/// (so a bare `*` still matches everything).
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    match (arn_parts(pattern), arn_parts(arn)) {
        (Some(p), Some(a)) => p.iter().zip(a.iter()).all(|(p, a)| matches(p, a)),
        _ => matches(pattern, arn),
    }
}

fn arn_parts(s: &str) -> Option<[&str; 6]> {
    let mut it = s.splitn(6, ':');
    let parts = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*", ""));
        assert!(matches("ecr:*", "ecr:GetAuthorizationToken"));
        assert!(matches("ec2:Describe*", "ec2:DescribeInstances"));
        assert!(!matches("ec2:Describe*", "ec2:CreateTags"));
        assert!(matches("s3:Get?bject", "s3:GetObject"));
        assert!(!matches("s3:Get?bject", "s3:GetObbject"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches(
            "arn:aws:ec2:*:*:network-interface/*",
            "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1"
        ));
        assert!(!matches("ECR:*", "ecr:BatchGetImage"));
        assert!(matches_ignore_case("ECR:batchget*", "ecr:BatchGetImage"));
    }

    #[test]
    fn arn_like_compares_parts() {
        assert!(arn_matches("arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:role/node"));
        assert!(arn_matches("arn:aws:ecr:*:*:repository/a:b", "arn:aws:ecr:us-east-1:1:repository/a:b"));
        assert!(!arn_matches("arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:user/bob"));
        assert!(!arn_matches("arn:aws:iam::*:role/*", "not-an-arn"));
        assert!(arn_matches("*", "arn:aws:iam::1:role/x"));
    }
}
