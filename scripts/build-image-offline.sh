#!/usr/bin/env bash
# Builds the netlab image without pulling anything: the release binaries built on this host, the
# shared libraries they link (read with ldd), and the few files they need, assembled FROM scratch.
# It is the same image the Dockerfile builds from source, for machines that reach no registry.
#
#   scripts/build-image-offline.sh            # -> netlab:${NETLAB_TAG:-latest}
set -euo pipefail
cd "$(dirname "$0")/.."
tag="netlab:${NETLAB_TAG:-latest}"

echo "==> building release binaries" >&2
cargo build --release --locked --bins

# Where cargo put them: target/ unless CARGO_TARGET_DIR (or a config) says otherwise.
release=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release
bins=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print("\n".join(sorted({t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]})))')

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/netlab"
chmod 1777 "$root/tmp"

echo "==> collecting binaries and their libraries" >&2
for b in $bins; do
  cp "$release/$b" "$root/usr/local/bin/"
  strip "$root/usr/local/bin/$b" 2>/dev/null || true
  ldd "$release/$b" | awk '$1 ~ /^\// {print $1} $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# The lab catalogue, where `netlab lab` looks beside an installed netlab (as the Dockerfile puts it).
mkdir -p "$root/usr/local/share/netlab"
cp -r labs "$root/usr/local/share/netlab/labs"
# The kubelet's image credential provider config, where the EKS AMI puts it (as the Dockerfile does).
mkdir -p "$root/etc/eks/image-credential-provider"
cp credential-provider/ecr-credential-provider-config.json "$root/etc/eks/image-credential-provider/config.json"

printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi

cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin
WORKDIR /var/lib/netlab
CMD ["netlab", "--help"]
DOCKERFILE

echo "==> docker build $tag" >&2
docker build -q -t "$tag" "$ctx" >/dev/null
docker image ls "$tag" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
