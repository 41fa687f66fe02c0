//! The images the registry serves: the repositories that real manifests name, each mapped onto
//! one of the lab's built-in apps. Repository names are as the registry serves them: Docker Hub
//! images under `library/<name>` (official) or `<user>/<name>`, other registries' images under
//! `<host>/<path>`, the way the node-agent maps a normalised reference onto this one registry.

/// The built-in program a container of the image runs, chosen by the config label
/// [`APP_LABEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// An HTTP server on the container port that answers with pod name, pod IP and node.
    Echo,
    /// The client side of exec: shell, curl, dig, nslookup, nc, ...
    Toolbox,
    /// A small key-value server (the redis stand-in).
    Kv,
    /// agnhost's netexec, the server of upstream's network e2e tests: HTTP on the port, UDP on
    /// 8081 (`hostname`, `echo TEXT`, `clientip`).
    Netexec,
}

/// The config label that names the app: `echo`, `toolbox`, `kv` or `netexec`.
pub const APP_LABEL: &str = "io.netlab.app";
/// The config label with the port the app listens on by default (absent for the toolbox).
pub const PORT_LABEL: &str = "io.netlab.port";

/// One repository of the catalogue and the image behind each of its tags.
#[derive(Debug, Clone, Copy)]
pub struct Repository {
    /// The repository name as served (`library/nginx`, `registry.k8s.io/nginx-slim`).
    pub name: &'static str,
    /// Tags, each a distinct image (its config carries the tag as version).
    pub tags: &'static [&'static str],
    /// The app its containers run.
    pub app: App,
    /// The app's default port, also in `config.ExposedPorts`.
    pub port: Option<u16>,
    /// `config.Entrypoint`, as the real image has it.
    pub entrypoint: &'static [&'static str],
    /// `config.Cmd`, as the real image has it.
    pub cmd: &'static [&'static str],
}

/// Every repository the registry serves.
pub const REPOSITORIES: &[Repository] = &[
    Repository {
        name: "library/nginx",
        tags: &["latest", "1.25", "1.26", "1.27", "1.28", "alpine", "stable"],
        app: App::Echo,
        port: Some(80),
        entrypoint: &["/docker-entrypoint.sh"],
        cmd: &["nginx", "-g", "daemon off;"],
    },
    Repository {
        name: "registry.k8s.io/nginx-slim",
        tags: &["0.8", "0.27"],
        app: App::Echo,
        port: Some(80),
        entrypoint: &[],
        cmd: &["nginx", "-g", "daemon off;"],
    },
    Repository {
        name: "library/httpd",
        tags: &["latest", "2.4"],
        app: App::Echo,
        port: Some(80),
        entrypoint: &[],
        cmd: &["httpd-foreground"],
    },
    Repository {
        name: "hashicorp/http-echo",
        tags: &["latest", "1.0"],
        app: App::Echo,
        port: Some(5678),
        entrypoint: &["/http-echo"],
        cmd: &[],
    },
    Repository {
        name: "netlab/echo",
        tags: &["latest", "v1"],
        app: App::Echo,
        port: Some(8080),
        entrypoint: &["/netlab-echo"],
        cmd: &[],
    },
    Repository {
        name: "library/busybox",
        tags: &["latest", "1.36", "1.37"],
        app: App::Toolbox,
        port: None,
        entrypoint: &[],
        cmd: &["sh"],
    },
    Repository {
        name: "nicolaka/netshoot",
        tags: &["latest", "v0.13"],
        app: App::Toolbox,
        port: None,
        entrypoint: &[],
        cmd: &["zsh"],
    },
    Repository {
        name: "curlimages/curl",
        tags: &["latest", "8.10.1"],
        app: App::Toolbox,
        port: None,
        entrypoint: &["/entrypoint.sh"],
        cmd: &["curl"],
    },
    Repository {
        // Its subcommand and flags (`netexec --http-port=8080 --udp-port=8081`) are not read:
        // the app is netexec on its default ports.
        name: "registry.k8s.io/e2e-test-images/agnhost",
        tags: &["2.52", "2.53"],
        app: App::Netexec,
        port: Some(8080),
        entrypoint: &["/agnhost"],
        cmd: &["pause"],
    },
    Repository {
        name: "library/redis",
        tags: &["latest", "7", "7.2", "7.4"],
        app: App::Kv,
        port: Some(6379),
        entrypoint: &["docker-entrypoint.sh"],
        cmd: &["redis-server"],
    },
];

// === impl App ===

impl App {
    /// The value of [`APP_LABEL`].
    pub fn label(self) -> &'static str {
        match self {
            App::Echo => "echo",
            App::Toolbox => "toolbox",
            App::Kv => "kv",
            App::Netexec => "netexec",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_are_valid_and_unique() {
        let mut names: Vec<_> = REPOSITORIES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REPOSITORIES.len());
        for repo in REPOSITORIES {
            assert!(crate::registry::valid_name(repo.name), "{}", repo.name);
            for tag in repo.tags {
                assert!(crate::registry::valid_tag(tag), "{}:{tag}", repo.name);
            }
        }
    }
}
