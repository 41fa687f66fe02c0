# A fake upstream resolver for the dns benchmark: A -> 192.0.2.10 (TTL 3600), else NOERROR/empty.
# Usage: python3 upstream.py PORT
import socket, struct, sys
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    q,a=s.recvfrom(4096)
    end=12
    while q[end]!=0: end+=q[end]+1
    qt=struct.unpack(">H",q[end+1:end+3])[0]
    r=q[:2]+bytes([0x80|(q[2]&1),0x80])+b"\x00\x01"+(b"\x00\x01" if qt==1 else b"\x00\x00")+b"\x00\x00\x00\x00"+q[12:end+5]
    if qt==1: r+=b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x0a"
    s.sendto(r,a)
