#!/usr/bin/env python3
"""Inclusive-time tree of a `perf script` dump, keeping only frames worth naming.

    perf script -i perf.data -F tid,ip,sym | python3 emulator/bench/perf_tree.py \
        [--depth 5] [--min 0.5] [--root REGEX]

`perf report` shows either flat self time or hundreds of tokio/hyper frames per stack;
this folds each sample's stack onto the frames that say *whose* work it is (the
emulator's functions, serde_json, HMAC, hash maps, the allocator, the HTTP client, the
kernel's network entry points) and prints the tree with inclusive percentages, so
"send_message → emit_status → envelope: 7 %" is one line. `--root` starts each stack at
the first frame matching REGEX (percentages stay of all samples).
"""
import re
import sys
from collections import defaultdict

KEEP = re.compile(
    r"wa_emulator::|serde_json::(ser|de|value::to_value|value::de)|hmac|sha2::|"
    r"hashbrown::raw::RawTable<T,A>::reserve_rehash|core::hash::sip|"
    r"hyper_util::client::legacy::(client::Client<C,B>::(send_request|connection_for)|connect::http::HttpConnector<R>::call_async)|"
    r"hyper::proto::h1::(dispatch::Dispatcher<D,Bs,I,T>::poll_(read|write)|role::Server::encode|role::Client::encode|io::Buffered<T,B>::parse)|"
    r"^(malloc|_int_malloc|_int_free|cfree@GLIBC_2.2.5|malloc_consolidate|__memmove\S*)$|"
    r"^(__x64_sys_\w+|tcp_v4_connect|inet_csk_accept|tcp_close)$|tokio::runtime::time::|tracing"
)


def frames_of(block):
    out = []
    for line in block[1:]:
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            out.append(parts[1].replace(" (inlined)", ""))
    return out  # leaf first


def main():
    depth, minimum, root = 5, 0.5, None
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--depth":
            depth = int(args.pop(0))
        elif a == "--min":
            minimum = float(args.pop(0))
        elif a == "--root":
            root = re.compile(args.pop(0))
    tree = defaultdict(int)  # path tuple -> samples
    flat = defaultdict(int)
    total = 0
    block = []
    for line in sys.stdin:
        if line.strip() == "":
            if block:
                total += 1
                fr = frames_of(block)
                kept = []
                for f in reversed(fr):  # root first
                    if KEEP.search(f) and (not kept or kept[-1] != f):
                        kept.append(f)
                for f in set(kept):
                    flat[f] += 1
                if root:
                    at = next((i for i, f in enumerate(kept) if root.search(f)), None)
                    kept = [] if at is None else kept[at:]
                kept = kept[:depth]
                for i in range(1, len(kept) + 1):
                    tree[tuple(kept[:i])] += 1
                if not kept and not root:
                    tree[("(no named frame: runtime, kernel scheduling, idle hand-offs)",)] += 1
            block = []
        else:
            block.append(line.rstrip("\n"))
    if total == 0:
        print("no samples")
        return
    print(f"{total} samples; inclusive % of all samples, named frames only, depth {depth}\n")

    def children(prefix):
        kids = [(p, n) for p, n in tree.items() if len(p) == len(prefix) + 1 and p[: len(prefix)] == prefix]
        return sorted(kids, key=lambda x: -x[1])

    def show(prefix, indent):
        for p, n in children(prefix):
            pct = 100.0 * n / total
            if pct < minimum:
                continue
            name = p[-1]
            if len(name) > 110:
                name = name[:107] + "..."
            print(f"{pct:6.1f}%  {'  ' * indent}{name}")
            show(p, indent + 1)

    show((), 0)
    print("\nflat inclusive (top 30):")
    for f, n in sorted(flat.items(), key=lambda x: -x[1])[:30]:
        print(f"{100.0 * n / total:6.1f}%  {f[:120]}")


if __name__ == "__main__":
    main()
