//! End-to-end scenarios: the real binaries, as separate processes, driven as a user drives them.

mod cli;
mod clusterip;
mod conntrack;
mod dataplane;
mod dns;
mod docker;
mod endpointslices;
mod faults_components;
mod flows;
mod kubernetes;
mod manifests;
mod native;
mod nodelifecycle;
mod nodes;
mod proxy;
mod registry;
mod scheduling;
mod trace;
mod workloads;
