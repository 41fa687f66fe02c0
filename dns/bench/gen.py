"""Writes the dns benchmark's cluster (ns-N.yaml: 100 namespaces x 100 Services, each with one
EndpointSlice of 3 ready endpoints) and dnsperf query files into the current directory.
Load with: for f in ns-*.yaml; do netlab --server URL apply -f $f; done"""
import random
NS = 100; PER = 100
for j in range(NS):
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{j}\n"]
    for i in range(PER):
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: ns-{j}\nspec:\n  selector:\n    app: svc-{i}\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n")
        n = j * PER + i
        eps = "".join(
            f"- addresses: [\"10.{100 + (n*3+k)//65536}.{((n*3+k)//256) % 256}.{(n*3+k) % 256}\"]\n  conditions:\n    ready: true\n"
            for k in range(3))
        docs.append(f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc-{i}-abcde\n  namespace: ns-{j}\n  labels:\n    kubernetes.io/service-name: svc-{i}\naddressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n{eps}")
    open(f"ns-{j}.yaml", "w").write("---\n".join(docs))
random.seed(1)
with open("incluster.txt", "w") as f:
    for _ in range(20000):
        f.write(f"svc-{random.randrange(PER)}.ns-{random.randrange(NS)}.svc.cluster.local A\n")
with open("nxdomain.txt", "w") as f:
    for _ in range(20000):
        f.write(f"nope-{random.randrange(1000)}.ns-{random.randrange(NS)}.svc.cluster.local A\n")
with open("forwarded.txt", "w") as f:
    for _ in range(20000):
        f.write(f"host-{random.randrange(100)}.example.com A\n")
