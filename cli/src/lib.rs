//! `netlab`, the lab's kubectl: the same verbs, columns and error messages, spoken over the
//! netlab apiserver's gRPC API instead of Kubernetes REST.
//!
//! Lab users already know kubectl, so every visible detail follows it: `svc`/`po`/`deploy`
//! aliases, `service/orders created`, tables aligned by a port of Go's tabwriter, `-o yaml` as
//! go-yaml writes it, `Error from server (NotFound): services "x" not found`. Output formatting is
//! pure (objects + clock in, text out) and unit-tested against kubectl's shapes; only
//! [`client`] talks to the network.
//!
//! # Layout
//! - [`config`]: the clap command line.
//! - [`client`]: connecting, the `Cluster` operations, gRPC status → kubectl wording.
//! - [`report`]: how problems are printed (kubectl's `CheckErr`).
//! - [`resource`]: kind aliases and printed names.
//! - [`manifest`]: YAML/JSON files → type-checked objects; [`flow_depth`]: go-yaml's nesting
//!   limit, checked before parsing.
//! - [`apply`], [`merge`]: create-or-update with kubectl's three-way merge.
//! - [`get`], [`print`](mod@print), [`tabwriter`], [`yaml`], [`json`], [`jsonpath`], [`selector`]: `get`
//!   and its output formats.
//! - [`describe`]: kubectl's describe pages.
//! - [`delete`], [`scale`]: the remaining verbs.
//! - [`token`]: `netlab create token`, a ServiceAccount token from the apiserver's issuer.
//! - [`fault`]: `netlab fault`, shortcuts that create, list and delete fault objects.
//! - [`node`]: `exec` and the node inspection commands, through the node's kernel API.
//! - [`lab`]: `netlab lab`, the lab runner over the live cluster.
//! - [`trace`]: `netlab trace`, a Jaeger trace as a tree in the terminal.
//! - [`cluster_file`]: where `netlab up` records the native cluster for later commands.
//! - [`kubeconfig`]: the kubeconfig `netlab up` writes for stock kubectl.

use std::{io::Write as _, process::ExitCode};

use jiff::Timestamp;
use netlab_proto::node::v1::Table;

pub mod apply;
pub mod aws;
pub mod client;
pub mod cluster_file;
pub mod config;
pub mod delete;
pub mod describe;
pub mod fault;
pub mod flow_depth;
pub mod get;
pub mod json;
pub mod jsonpath;
pub mod kubeconfig;
pub mod lab;
pub mod manifest;
pub mod merge;
pub mod node;
pub mod print;
pub mod report;
pub mod resource;
pub mod scale;
pub mod selector;
pub mod tabwriter;
pub mod token;
pub mod trace;
pub mod up;
pub mod yaml;

pub use config::Cli;

use crate::{client::Api, config::Command, manifest::Checks, report::Problem};

/// Runs one command, printing its output and any errors as kubectl would; returns the exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let problems = execute(&cli).await;
    if problems.is_empty() {
        return ExitCode::SUCCESS;
    }
    let _ = std::io::stdout().flush();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", report::render(&problems));
    ExitCode::FAILURE
}

async fn execute(cli: &Cli) -> Vec<Problem> {
    let ns = cli.namespace();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    match &cli.command {
        // The children's log lines are printed from other threads: don't hold stdout's lock.
        Command::Up(args) => {
            drop(out);
            match up::up(args, &cli.data_dir(), &mut std::io::stdout()).await {
                Ok(()) => Vec::new(),
                Err(p) => vec![p],
            }
        }
        Command::Node(config::NodeCommand::IptablesSave { node }) => {
            node_save(cli, node, Table::IptablesSave, &mut out, &mut err).await
        }
        Command::Node(config::NodeCommand::Ipvsadm { node }) => {
            node_save(cli, node, Table::Ipvsadm, &mut out, &mut err).await
        }
        Command::Node(config::NodeCommand::Conntrack { node }) => {
            node_save(cli, node, Table::Conntrack, &mut out, &mut err).await
        }
        Command::Node(config::NodeCommand::Routes { node }) => {
            node_save(cli, node, Table::Routes, &mut out, &mut err).await
        }
        Command::Node(config::NodeCommand::Enis { node, output }) => {
            let mut api = Api::new(&cli.server());
            match node::enis(&mut api, node, output.is_some(), &mut out).await {
                Ok(()) => Vec::new(),
                Err(p) => vec![p],
            }
        }
        Command::Exec(args) => {
            let mut api = Api::new(&cli.server());
            let result = node::exec(
                &mut api,
                &ns.name,
                &args.pod,
                args.container.as_deref(),
                &args.command,
                &mut out,
                &mut err,
            )
            .await;
            if result.is_ok() {
                announce(cli, &mut err);
            }
            match result {
                Ok(0) => Vec::new(),
                Ok(code) => {
                    // kubectl exits with the command's code and prints nothing more.
                    let _ = out.flush();
                    let _ = err.flush();
                    std::process::exit(code);
                }
                Err(p) => vec![p],
            }
        }
        Command::Node(config::NodeCommand::Cni { node }) => {
            let mut api = Api::new(&cli.server());
            match node_cni(&mut api, node).await {
                Ok(text) => {
                    let _ = out.write_all(text.as_bytes());
                    Vec::new()
                }
                Err(p) => vec![p],
            }
        }
        Command::Probe { addr, path } => {
            match netlab_health::probe(addr, path, std::time::Duration::from_secs(2)) {
                Ok(()) => {
                    let _ = writeln!(out, "ok");
                    Vec::new()
                }
                Err(e) => vec![Problem::client(e.to_string())],
            }
        }
        Command::Demo { enabled, eks } => {
            let mut api = Api::new(&cli.server());
            if *eks && let Err(p) = up::apply_aws_node(&mut api, &std::env::temp_dir()).await {
                return vec![p];
            }
            if !*enabled {
                let _ = writeln!(out, "NETLAB_DEMO=0: not applying the demo workload");
                return Vec::new();
            }
            match up::apply_demo(&mut api, &std::env::temp_dir(), &mut out).await {
                Ok(()) => Vec::new(),
                Err(p) => vec![p],
            }
        }
        Command::Kubeconfig => {
            let _ = out.write_all(kubeconfig::render(&cli.server()).as_bytes());
            Vec::new()
        }
        Command::Down => match up::down(&cli.data_dir(), &mut out) {
            Ok(()) => Vec::new(),
            Err(p) => vec![p],
        },
        Command::ApiResources => {
            let _ = out.write_all(api_resources().as_bytes());
            Vec::new()
        }
        Command::Apply(args) => {
            // Every document is checked before the first request, as kubectl does.
            let manifests = match manifest::load(&args.filenames, args.recursive, Checks::Full) {
                Ok(m) if m.is_empty() => {
                    return vec![Problem::client("no objects passed to apply")];
                }
                Ok(m) => m,
                Err(p) => return p,
            };
            let mut api = Api::new(&cli.server());
            let problems = apply::apply(&mut api, manifests, &ns, &mut out, &mut err).await;
            announce(cli, &mut err);
            problems
        }
        Command::Get(args) => {
            let mut api = Api::new(&cli.server());
            get::get(&mut api, args, &ns, &mut out, &mut err, Timestamp::now()).await
        }
        Command::Describe(args) => {
            let mut api = Api::new(&cli.server());
            describe::describe(&mut api, args, &ns, &mut out, &mut err, &describe::Clock::system()).await
        }
        Command::Delete(args) => {
            let mut api = Api::new(&cli.server());
            let problems = delete::delete(&mut api, args, &ns, &mut out, &mut err).await;
            announce(cli, &mut err);
            problems
        }
        Command::Scale(args) => {
            let mut api = Api::new(&cli.server());
            let problems = scale::scale(&mut api, args, &ns, &mut out).await;
            announce(cli, &mut err);
            problems
        }
        Command::Fault(cmd) => {
            let mut api = Api::new(&cli.server());
            let scope = fault::Scope { namespace: &ns.name, explicit: ns.explicit };
            let problems =
                fault::fault(&mut api, cmd.as_ref(), scope, &mut out, &mut err, Timestamp::now()).await;
            if !matches!(cmd.as_ref(), fault::args::FaultCommand::List(_)) {
                announce(cli, &mut err);
            }
            problems
        }
        Command::Create(config::CreateCommand::Token(args)) => {
            let mut api = Api::new(&cli.server());
            match token::create_token(&mut api, args, &ns.name, &mut out, &mut err).await {
                Ok(()) => Vec::new(),
                Err(p) => vec![p],
            }
        }
        Command::Aws(config::AwsCommand::Env { endpoint, region }) => {
            let endpoint = endpoint
                .clone()
                .or_else(|| crate::cluster_file::read_cluster(&cli.data_dir()).and_then(|c| c.aws_endpoint))
                .unwrap_or_else(|| aws::COMPOSE_ENDPOINT.to_string());
            match aws::env(&endpoint, region, &mut out) {
                Ok(()) => Vec::new(),
                Err(e) => vec![Problem::client(format!("writing: {e}"))],
            }
        }
        Command::Lab(args) => {
            // The cluster's AWS endpoint, found as `netlab aws env` finds it.
            let aws_endpoint = crate::cluster_file::read_cluster(&cli.data_dir())
                .and_then(|c| c.aws_endpoint)
                .unwrap_or_else(|| aws::COMPOSE_ENDPOINT.to_string());
            let result = lab::lab(
                &args.command,
                args.labs_dir.as_ref(),
                &cli.server(),
                &cli.jaeger_url(),
                &aws_endpoint,
                &mut out,
            )
            .await;
            match result {
                Ok(true) => Vec::new(),
                Ok(false) => {
                    // A failing check is an answer, not an error: exit 1 with nothing more.
                    let _ = out.flush();
                    std::process::exit(1);
                }
                Err(p) => vec![p],
            }
        }
        Command::Trace(args) => {
            match trace::trace(args, &cli.jaeger_url(), &cli.data_dir(), &mut out).await {
                Ok(()) => Vec::new(),
                Err(p) => vec![p],
            }
        }
    }
}

async fn node_save(
    cli: &Cli,
    node: &str,
    table: Table,
    out: &mut impl std::io::Write,
    err: &mut impl std::io::Write,
) -> Vec<Problem> {
    let mut api = Api::new(&cli.server());
    match node::save(&mut api, node, table, out, err).await {
        Ok(()) => Vec::new(),
        Err(p) => vec![p],
    }
}

/// After a command that set off work: remember its trace for `netlab trace last`, and print the
/// Jaeger link when a person is watching (stderr is a terminal). Scripts and tests, reading
/// stderr through a pipe, get exactly kubectl's output.
fn announce(cli: &Cli, err: &mut impl std::io::Write) {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        trace::announce(err, &cli.jaeger_url(), &cli.data_dir(), client::trace_id());
    } else {
        let _ = trace::remember(&cli.data_dir(), client::trace_id());
    }
}

/// The kubelet keeps each pod's CNI result and publishes it as the pod annotation
/// `netlab.io/cni-result`; this prints them for one node, as a node's CNI cache would show them.
async fn node_cni(api: &mut impl client::Cluster, node: &str) -> Result<String, Problem> {
    use netlab_proto::apiserver::v1::Resource;
    api.get(Resource::Nodes, "", node).await?;
    let pods = api.list(Resource::Pods, "", "", &format!("spec.nodeName={node}")).await?;
    let mut text = String::new();
    for pod in pods {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let result = pod["metadata"]["annotations"]["netlab.io/cni-result"].as_str();
        text.push_str(&format!("# pod {ns}/{name}\n"));
        match result.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) {
            Some(v) => {
                text.push_str(&serde_json::to_string_pretty(&v).unwrap_or_default());
                text.push('\n');
            }
            None if pod["spec"]["hostNetwork"].as_bool() == Some(true) => {
                text.push_str("(host network: no CNI)\n")
            }
            None => text.push_str("(no CNI result yet)\n"),
        }
    }
    if text.is_empty() {
        text = format!("No pods on node {node}.\n");
    }
    Ok(text)
}

/// `kubectl api-resources` for what netlab serves.
pub fn api_resources() -> String {
    let mut text = String::from("NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\n");
    for r in resource::ALL {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            r.plural(),
            resource::short_names(r).join(","),
            r.api_version(),
            r.namespaced(),
            r.kind()
        ));
    }
    tabwriter::align(&text, tabwriter::TABLE)
}
