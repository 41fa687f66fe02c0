//! Bad manifests: one line that names the field or line, a non-zero exit, and nothing stored.

use netlab_e2e::{Apiserver, netlab};

const GOOD_HEAD: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: orders\nspec:\n";

#[test]
fn bad_manifests_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    let cases: Vec<(&str, String, &str)> = vec![
        ("wrong field type", format!("{GOOD_HEAD}  ports:\n  - port: eighty\n"), "spec.ports[0].port"),
        (
            "invalid name",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: Orders\nspec:\n  ports:\n  - port: 80\n"
                .to_string(),
            "metadata.name: Invalid value: \"Orders\"",
        ),
        ("missing port", format!("{GOOD_HEAD}  ports:\n  - name: http\n"), "spec.ports[0].port"),
        (
            "unknown kind",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: orders\n".to_string(),
            "no matches for kind \"Ingress\"",
        ),
        ("malformed YAML", format!("{GOOD_HEAD}  ports: [\n  - port: 80\n"), "line"),
    ];
    for (what, manifest, expect) in cases {
        let run = netlab(&url, &["apply", "-f", "-"], Some(&manifest));
        assert_ne!(run.code, Some(0), "{what}: must fail");
        assert!(run.stderr.contains(expect), "{what}: stderr should name {expect:?}, got: {}", run.stderr);
        assert!(run.stdout.trim().is_empty(), "{what}: nothing applied: {}", run.stdout);
        for name in ["orders", "Orders"] {
            let get = netlab(&url, &["get", "svc", name, "-o", "name"], None);
            assert_ne!(get.code, Some(0), "{what}: nothing stored");
        }
    }
}
