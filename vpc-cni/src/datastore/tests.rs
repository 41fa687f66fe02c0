//! Datastore tests: address order, cooldown, idempotent assignment, checkpoint shape.

use super::*;

fn ds(dir: &Path, pd: bool) -> DataStore {
    let log = Arc::new(Logger::new(dir.join("ipamd.log")));
    DataStore::new(pd, Duration::from_secs(30), Duration::from_secs(60), dir.join("ipam.json"), log)
}

fn key(n: u32) -> IpamKey {
    IpamKey { network_name: "aws-cni".into(), container_id: format!("c{n}"), if_name: "eth0".into() }
}

fn meta(n: u32) -> IpamMetadata {
    IpamMetadata { pod_namespace: "default".into(), pod_name: format!("p{n}"), interfaces_count: 1 }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn lowest_device_then_lowest_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ds(dir.path(), false);
    let now = Instant::now();
    d.add_eni("eni-b", 1, None, ip("10.0.0.20"), "s", now);
    d.add_eni("eni-a", 0, None, ip("10.0.0.10"), "s", now);
    d.add_cidr("eni-b", "10.0.0.21/32".parse().unwrap(), false);
    d.add_cidr("eni-a", "10.0.0.12/32".parse().unwrap(), false);
    d.add_cidr("eni-a", "10.0.0.11/32".parse().unwrap(), false);
    let a = d.assign(&key(0), &meta(0), now).unwrap();
    assert_eq!((a.ip, a.device_number, a.route_table_id), (ip("10.0.0.11"), 0, RT_TABLE_MAIN));
    assert_eq!(d.assign(&key(1), &meta(1), now).unwrap().ip, ip("10.0.0.12"));
    let c = d.assign(&key(2), &meta(2), now).unwrap();
    assert_eq!((c.ip, c.device_number, c.route_table_id), (ip("10.0.0.21"), 1, 2));
    assert_eq!(d.assign(&key(3), &meta(3), now).unwrap_err(), ERR_NO_AVAILABLE_IP);
    assert_eq!(d.stats(now), Stats { total_ips: 3, assigned_ips: 3, ..Stats::default() });
}

#[tokio::test(start_paused = true)]
async fn same_key_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ds(dir.path(), false);
    let now = Instant::now();
    d.add_eni("eni-a", 0, None, ip("10.0.0.10"), "s", now);
    d.add_cidr("eni-a", "10.0.0.11/32".parse().unwrap(), false);
    d.add_cidr("eni-a", "10.0.0.12/32".parse().unwrap(), false);
    let a = d.assign(&key(0), &meta(0), now).unwrap();
    assert_eq!(d.assign(&key(0), &meta(0), now).unwrap(), a);
    assert_eq!(d.stats(now).assigned_ips, 1);
}

#[tokio::test(start_paused = true)]
async fn cooldown_counts_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ds(dir.path(), false);
    let now = Instant::now();
    d.add_eni("eni-a", 0, None, ip("10.0.0.10"), "s", now);
    d.add_cidr("eni-a", "10.0.0.11/32".parse().unwrap(), false);
    d.assign(&key(0), &meta(0), now).unwrap();
    assert!(d.unassign(&key(0), now).is_some());
    assert!(d.unassign(&key(0), now).is_none());
    assert_eq!(d.stats(now).cooldown_ips, 1);
    assert!(d.assign(&key(1), &meta(1), now + Duration::from_secs(29)).is_err(), "still cooling");
    let later = now + Duration::from_secs(31);
    assert_eq!(d.stats(later).cooldown_ips, 0);
    assert_eq!(d.assign(&key(1), &meta(1), later).unwrap().ip, ip("10.0.0.11"));
}

#[tokio::test(start_paused = true)]
async fn prefixes_give_sixteen_addresses_and_count_in_pd_mode_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ds(dir.path(), true);
    let now = Instant::now();
    d.add_eni("eni-a", 0, None, ip("10.0.0.10"), "s", now);
    d.add_cidr("eni-a", "10.0.1.0/28".parse().unwrap(), true);
    d.add_cidr("eni-a", "10.0.0.11/32".parse().unwrap(), false);
    let s = d.stats(now);
    assert_eq!((s.total_ips, s.total_prefixes, s.free_prefixes), (16, 1, 1));
    assert_eq!(
        d.assign(&key(0), &meta(0), now).unwrap().ip,
        ip("10.0.1.0"),
        "the /28's first address is usable"
    );
    assert_eq!(d.stats(now).free_prefixes, 0);
    assert_eq!(d.freeable_cidrs("eni-a"), vec![("10.0.0.11/32".parse().unwrap(), false)]);
}

#[tokio::test(start_paused = true)]
async fn checkpoint_has_upstreams_shape_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = ds(dir.path(), false);
    let now = Instant::now();
    d.add_eni("eni-a", 0, None, ip("10.0.0.10"), "s", now);
    d.add_cidr("eni-a", "10.0.0.11/32".parse().unwrap(), false);
    d.assign(&key(7), &meta(7), now).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ipam.json")).unwrap()).unwrap();
    assert_eq!(v["version"], "vpc-cni-ipam/1");
    let a = &v["allocations"][0];
    assert_eq!(a["containerID"], "c7");
    assert_eq!(a["ifName"], "eth0");
    assert_eq!(a["networkName"], "aws-cni");
    assert_eq!(a["ipv4"], "10.0.0.11");
    assert_eq!(
        a["metadata"],
        serde_json::json!({"k8sPodNamespace": "default", "k8sPodName": "p7", "interfacesCount": 1})
    );
    assert!(a["allocationTimestamp"].as_i64().unwrap() > 0);
    assert!(!dir.path().join("ipam.json.tmp").exists());

    let mut e = ds(dir.path(), false);
    e.add_eni("eni-a", 0, None, ip("10.0.0.10"), "s", now);
    e.add_cidr("eni-a", "10.0.0.11/32".parse().unwrap(), false);
    e.restore().unwrap();
    assert_eq!(e.find(&key(7)).unwrap().ip, ip("10.0.0.11"));
}

#[test]
fn bad_checkpoint_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ipam.json"), r#"{"version":"vpc-cni-ipam/9","allocations":[]}"#).unwrap();
    let mut d = ds(dir.path(), false);
    let err = d.restore().unwrap_err();
    assert!(err.to_string().contains("unexpected checkpointVersion: vpc-cni-ipam/9/vpc-cni-ipam/1"), "{err}");
}

#[test]
fn masks_marshal_as_go_does() {
    assert_eq!(mask_base64(32), "/////w==");
    assert_eq!(mask_base64(28), "////8A==");
}
