//! End-to-end scenarios: the real binaries, as separate processes, driven as a user drives them.

mod cli;
mod clusterip;
mod conntrack;
mod dataplane;
mod dns;
mod docker;
mod endpointslices;
mod faults_api;
mod faults_cli;
mod faults_components;
mod faults_controller;
mod faults_dns;
mod faults_network;
mod faults_pods;
mod faults_registry;
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
