# netlab: every binary in one image; each compose service runs a different command.
# Builds from source. Machines without registry access use scripts/build-image-offline.sh, which
# assembles the same image FROM scratch from host-built binaries.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# protoc comes from the protoc-bin-vendored crate: no system package needed.
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && find target/release -maxdepth 1 -type f -executable \( -name 'netlab*' -o -name 'ecr-credential-provider' \) -exec cp {} /out/ \;

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# The lab catalogue, where `netlab lab` looks beside an installed netlab.
COPY labs/ /usr/local/share/netlab/labs/
# The kubelet's image credential provider config, where the EKS AMI puts it.
COPY credential-provider/ecr-credential-provider-config.json /etc/eks/image-credential-provider/config.json
WORKDIR /var/lib/netlab
CMD ["netlab", "--help"]
