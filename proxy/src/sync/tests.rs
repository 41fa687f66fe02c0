//! The runner against the fake kernel, on paused time.

use std::{sync::Arc, time::Duration};

use super::*;
use crate::{
    dataplane::fake::FakeDataplane,
    iptables::Options,
    model::fixtures::{ready, service, slice},
};

fn opts() -> Options {
    Options {
        cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
        masquerade_all: false,
        random_fully: true,
    }
}

fn setup(mode: Mode) -> (Arc<FakeDataplane>, Handle, Runner) {
    let fake = Arc::new(FakeDataplane::new());
    let handle = Handle::new("node1", ProxyHealth::new(Duration::from_secs(60)));
    let settings = Settings::new(Duration::from_secs(1), Duration::from_secs(30));
    let runner = Runner::new(handle.clone(), fake.clone(), mode, settings);
    (fake, handle, runner)
}

fn iptables_mode() -> Mode {
    Mode::Iptables(Iptables::new(opts()))
}

fn web(n: u32) -> Service {
    service("default", &format!("web{n}"), &format!("10.96.1.{n}"), &[("http", 80, "TCP")])
}

fn applied<K>(k: K) -> Change<K> {
    Change::Applied(Arc::new(k))
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

fn spawn(runner: Runner) -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(runner.run(token.clone()));
    token
}

#[tokio::test(start_paused = true)]
async fn nothing_is_programmed_before_both_lists_are_in() {
    let (fake, handle, runner) = setup(iptables_mode());
    let _stop = spawn(runner).drop_guard();
    handle.service(applied(web(1)));
    tokio::time::sleep(Duration::from_secs(60)).await;
    handle.services_synced();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(fake.restores(), 0, "Services alone are not enough");

    handle.endpoint_slices_synced();
    until("the first sync", || fake.restores() == 1).await;
    let first = &fake.requests()[0];
    assert_eq!((first.format, first.noflush), (Format::Iptables as i32, true));
    assert!(first.text.contains("\"default/web1:http has no endpoints\""), "{}", first.text);
    assert_eq!(first.ensure, iptables::ensure_rules(), "the first sync is full and ensures the jumps");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_costs_at_most_two_syncs() {
    let (fake, handle, runner) = setup(iptables_mode());
    handle.services_synced();
    handle.endpoint_slices_synced();
    let _stop = spawn(runner).drop_guard();
    until("the first sync", || fake.restores() == 1).await;

    for n in 0..50 {
        handle.service(applied(web(n)));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let burst = fake.restores() - 1;
    assert!((1..=2).contains(&burst), "{burst} syncs for 50 changes in 100 ms");
    let dump = fake.dump();
    for n in 0..50 {
        assert!(dump.contains(&format!("\"default/web{n}:http has no endpoints\"")), "web{n} programmed");
    }
    assert!(fake.requests()[1..].iter().all(|r| r.ensure.is_empty()), "partial syncs ensure nothing");
}

#[tokio::test(start_paused = true)]
async fn a_failed_restore_is_retried_and_the_retry_is_full() {
    let (fake, handle, runner) = setup(iptables_mode());
    handle.service(applied(web(1)));
    handle.services_synced();
    handle.endpoint_slices_synced();
    // The kernel is unreachable for three attempts.
    fake.fail_next(3);
    let _stop = spawn(runner).drop_guard();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.restores(), 2, "one try, one retry a second later");
    until("the kernel takes the rules", || fake.restores() == 4).await;
    assert!(fake.dump().contains("default/web1:http has no endpoints"));

    // A partial sync, then one that fails: the retry writes everything again.
    let slice_a = slice("default", "web1", "web1-a", ("http", 8080, "TCP"), &[ready("10.244.1.5", "node1")]);
    handle.endpoint_slice(applied(slice_a));
    until("a partial sync", || fake.restores() == 5).await;
    assert!(fake.requests()[4].ensure.is_empty());
    fake.fail_next(1);
    handle.service(applied(web(2)));
    until("the failing sync and its retry", || fake.restores() == 7).await;
    let retry = &fake.requests()[6];
    assert_eq!(retry.ensure, iptables::ensure_rules(), "the retry is full");
    assert!(retry.text.contains(":KUBE-SEP-"), "unchanged Services' chains are written again");
    assert!(fake.dump().contains("default/web2:http has no endpoints"));
}

#[tokio::test(start_paused = true)]
async fn every_sync_period_brings_a_full_sync() {
    let (fake, handle, runner) = setup(iptables_mode());
    handle.service(applied(web(1)));
    handle.endpoint_slice(applied(slice(
        "default",
        "web1",
        "w",
        ("http", 8080, "TCP"),
        &[ready("10.244.1.5", "n2")],
    )));
    handle.services_synced();
    handle.endpoint_slices_synced();
    let _stop = spawn(runner).drop_guard();
    until("the first sync", || fake.restores() == 1).await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(fake.restores(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.restores(), 2);
    let again = &fake.requests()[1];
    assert!(!again.ensure.is_empty() && again.text.contains(":KUBE-SVC-"), "{}", again.text);
}

#[tokio::test(start_paused = true)]
async fn changes_that_change_no_rule_write_nothing() {
    let (fake, handle, runner) = setup(iptables_mode());
    handle.service(applied(web(1)));
    handle.services_synced();
    handle.endpoint_slices_synced();
    let _stop = spawn(runner).drop_guard();
    until("the first sync", || fake.restores() == 1).await;
    let mut labelled = web(1);
    labelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    handle.service(applied(labelled));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fake.restores(), 1);
}

/// A scripted history of changes, each followed by a partial sync, leaves the kernel exactly as
/// one full sync of the final state does on a fresh kernel.
#[tokio::test]
async fn partial_syncs_leave_the_kernel_as_a_full_sync_would() {
    let (fake, handle, mut runner) = setup(iptables_mode());
    handle.services_synced();
    handle.endpoint_slices_synced();
    let ep = |ip: &'static str| ready(ip, "node1");
    type Step = Box<dyn Fn(&Handle)>;
    let steps: Vec<Step> = vec![
        Box::new(|h| h.service(applied(web(1)))),
        Box::new(|h| h.service(applied(web(2)))),
        Box::new(move |h| {
            h.endpoint_slice(applied(slice(
                "default",
                "web1",
                "a",
                ("http", 8080, "TCP"),
                &[ep("10.244.1.5"), ep("10.244.1.6")],
            )))
        }),
        Box::new(move |h| {
            h.endpoint_slice(applied(slice(
                "default",
                "web2",
                "b",
                ("http", 8080, "TCP"),
                &[ep("10.244.2.5")],
            )))
        }),
        Box::new(move |h| {
            h.endpoint_slice(applied(slice(
                "default",
                "web1",
                "a",
                ("http", 8080, "TCP"),
                &[ep("10.244.1.6"), ep("10.244.1.7"), ep("10.244.1.8")],
            )))
        }),
        Box::new(|h| h.service(Change::Deleted(Arc::new(web(2))))),
        Box::new(move |h| {
            h.endpoint_slice(Change::Deleted(Arc::new(slice(
                "default",
                "web2",
                "b",
                ("http", 8080, "TCP"),
                &[],
            ))))
        }),
        Box::new(|h| h.service(applied(web(3)))),
        Box::new(move |h| {
            h.endpoint_slice(applied(slice("default", "web1", "a", ("http", 8080, "TCP"), &[])))
        }),
    ];
    runner.sync(true).await;
    for step in &steps {
        step(&handle);
        runner.sync(false).await;
    }
    let requests = fake.requests();
    // Deleting web2's slice after web2 itself changes no rule: no restore for that step.
    assert_eq!(requests.len(), steps.len());
    assert!(requests[1..].iter().all(|r| r.ensure.is_empty()), "all partial");
    assert_eq!(runner.failures, 0, "every restore was taken");

    let (fresh, fresh_handle, mut fresh_runner) = setup(iptables_mode());
    fresh_handle.services_synced();
    fresh_handle.endpoint_slices_synced();
    fresh_handle.service(applied(web(1)));
    fresh_handle.service(applied(web(3)));
    fresh_handle.endpoint_slice(applied(slice("default", "web1", "a", ("http", 8080, "TCP"), &[])));
    fresh_runner.sync(true).await;
    assert_eq!(fake.dump(), fresh.dump());
    assert!(!fake.dump().contains("KUBE-SEP-"), "every endpoint chain was deleted");
}

#[tokio::test(start_paused = true)]
async fn ipvs_mode_writes_the_whole_table_then_only_changes() {
    let (fake, handle, runner) = setup(Mode::Ipvs(Ipvs::new("rr")));
    handle.service(applied(web(1)));
    handle.endpoint_slice(applied(slice(
        "default",
        "web1",
        "w",
        ("http", 8080, "TCP"),
        &[ready("10.244.1.5", "n2")],
    )));
    handle.services_synced();
    handle.endpoint_slices_synced();
    let _stop = spawn(runner).drop_guard();
    until("the first sync", || fake.restores() == 1).await;
    let req = &fake.requests()[0];
    assert_eq!(req.format, Format::Ipvs as i32);
    assert_eq!(req.text, "-C\n-A -t 10.96.1.1:80 -s rr\n-a -t 10.96.1.1:80 -r 10.244.1.5:8080 -m -w 1\n");
    handle.service(applied(web(2)));
    until("the second sync", || fake.restores() == 2).await;
    assert_eq!(fake.requests()[1].text, "-A -t 10.96.1.2:80 -s rr\n", "only the new virtual server");
    assert!(fake.ipvs().ends_with(
        "TCP  10.96.1.1:80 rr\n  -> 10.244.1.5:8080              Masq    1      0          0         \nTCP  10.96.1.2:80 rr\n"
    ));
    // A refused restore is retried in full.
    fake.fail_next(1);
    handle.service(Change::Deleted(Arc::new(web(2))));
    until("the retry", || fake.restores() == 4).await;
    assert!(fake.requests()[3].text.starts_with("-C\n"));
    assert!(!fake.ipvs().contains("10.96.1.2:80"));
}

#[tokio::test(start_paused = true)]
async fn health_turns_ok_with_the_first_sync() {
    let (fake, handle, runner) = setup(iptables_mode());
    let health = handle.shared.health.clone();
    let _stop = spawn(runner).drop_guard();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!health.is_healthy());
    handle.services_synced();
    handle.endpoint_slices_synced();
    until("the first sync", || fake.restores() == 1).await;
    assert!(health.is_healthy());
}

fn udp_flow(fake: &FakeDataplane, sport: u16, endpoint: &str) {
    fake.track(
        netlab_kernel::conntrack::Key {
            protocol: netlab_kernel::Protocol::Udp,
            src: format!("10.244.1.3:{sport}").parse().unwrap(),
            dst: "10.96.0.53:53".parse().unwrap(),
        },
        netlab_kernel::conntrack::Nat { dst: format!("{endpoint}:5353").parse().unwrap(), src: None },
    );
}

fn dns_slice(eps: &[crate::model::fixtures::Ep<'_>]) -> EndpointSlice {
    slice("default", "dns", "dns-a", ("dns", 5353, "UDP"), eps)
}

fn deletes(fake: &FakeDataplane) -> Vec<String> {
    fake.conntrack_deletes().iter().map(ToString::to_string).collect()
}

/// After each sync the kernel took, the UDP flows it left stale are deleted; a delete that fails
/// does not fail the sync and is retried at the next one.
#[tokio::test]
async fn stale_udp_flows_are_deleted_after_each_sync() {
    let (fake, handle, mut runner) = setup(iptables_mode());
    handle.services_synced();
    handle.endpoint_slices_synced();
    handle.service(applied(service("default", "dns", "10.96.0.53", &[("dns", 53, "UDP")])));
    handle.endpoint_slice(applied(dns_slice(&[ready("10.244.1.5", "node1"), ready("10.244.2.7", "node2")])));
    runner.sync(true).await;
    assert_eq!(
        deletes(&fake),
        ["-p udp --orig-dst 10.96.0.53"],
        "newly active: flows tracked before it had endpoints"
    );

    udp_flow(&fake, 41000, "10.244.1.5");
    udp_flow(&fake, 41001, "10.244.2.7");
    handle.endpoint_slice(applied(dns_slice(&[ready("10.244.2.7", "node2")])));
    runner.sync(false).await;
    assert_eq!(deletes(&fake)[1..], ["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.1.5"]);
    let ct = fake.conntrack();
    assert!(!ct.contains("src=10.244.1.5 "), "the gone endpoint's flow is deleted:\n{ct}");
    assert!(ct.contains("src=10.244.2.7 "), "the other endpoint's flow stays:\n{ct}");

    // The kernel takes the rules but not the delete: the sync stands, the delete waits.
    fake.fail_conntrack_next(1);
    handle.endpoint_slice(applied(dns_slice(&[])));
    runner.sync(false).await;
    assert_eq!(fake.restores(), 3);
    assert_eq!((runner.failures, runner.timing.retry_at()), (0, None), "not a failed sync");
    assert!(fake.conntrack().contains("src=10.244.2.7 "));
    assert_eq!(runner.conntrack_pending.len(), 1);

    // The next sync, for anything at all, retries it.
    handle.service(applied(web(1)));
    runner.sync(false).await;
    assert_eq!(deletes(&fake)[2..], ["-p udp --orig-dst 10.96.0.53 --dst-nat 10.244.2.7"; 2]);
    assert_eq!(fake.conntrack(), "", "every flow is gone");
    assert!(runner.conntrack_pending.is_empty());

    // TCP Services leave conntrack alone.
    handle.endpoint_slice(applied(slice(
        "default",
        "web1",
        "w",
        ("http", 8080, "TCP"),
        &[ready("10.244.1.5", "n2")],
    )));
    runner.sync(false).await;
    handle.endpoint_slice(applied(slice("default", "web1", "w", ("http", 8080, "TCP"), &[])));
    runner.sync(false).await;
    assert_eq!(fake.conntrack_deletes().len(), 4);
}

/// A kernel that only takes rules (the trait's default `delete_conntrack`): syncs go on, and
/// nothing piles up for retries.
#[tokio::test]
async fn a_kernel_without_conntrack_gets_no_retries() {
    struct RulesOnly(FakeDataplane);
    #[async_trait::async_trait]
    impl Dataplane for RulesOnly {
        async fn restore(&self, req: RestoreRequest) -> Result<u64> {
            self.0.restore(req).await
        }
        async fn save(&self, table: Table) -> Result<String> {
            self.0.save(table).await
        }
    }
    let handle = Handle::new("node1", ProxyHealth::new(Duration::from_secs(60)));
    let settings = Settings::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut runner =
        Runner::new(handle.clone(), Arc::new(RulesOnly(FakeDataplane::new())), iptables_mode(), settings);
    handle.services_synced();
    handle.endpoint_slices_synced();
    handle.service(applied(service("default", "dns", "10.96.0.53", &[("dns", 53, "UDP")])));
    handle.endpoint_slice(applied(dns_slice(&[ready("10.244.1.5", "node1")])));
    runner.sync(true).await;
    assert_eq!((runner.failures, runner.conntrack_failures), (0, 1));
    assert!(runner.conntrack_pending.is_empty());
}
