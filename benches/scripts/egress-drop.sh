#!/usr/bin/env bash
# Runs sfu-throughput with the SFU's media dropped where a NIC would take it.
#
# On loopback the kernel delivers every datagram the SFU sends to the
# subscriber's socket inside the SFU's own sendmmsg, so the SFU's measured
# CPU includes its receivers' kernel work. Over a real network that work is
# on the receivers' machines. This script gives `lo` an HTB root qdisc
# (rate far above anything here) and, once the SFU has bound its port, a
# u32 filter that sends RTP and RTCP from that port (first payload byte
# 0b10xxxxxx) to a pfifo of limit 0. Those datagrams pass the SFU's whole
# send path (socket, UDP, IP, routing, the device queue) and are dropped
# there; STUN and DTLS still flow, so sessions connect as usual. The kernel
# reports the drop to UDP as ENOBUFS, which UDP does not pass on, so the
# SFU counts the datagrams as sent.
#
# Compare MODE=drop with MODE=pass (the same HTB, no filter), alternately:
# the difference is the receivers' share. MODE=none leaves `lo` untouched.
# Only with --sink (nothing is verified end to end). Needs root and tc.
# Removes its qdisc when done. Never use it on a machine that carries other
# loopback traffic you care about while it runs.
#
# usage: benches/scripts/egress-drop.sh MODE SFU_THROUGHPUT_BINARY [sfu-throughput args...]
# e.g.   benches/scripts/egress-drop.sh drop target/release/sfu-throughput \
#          --fanout 10 --publishers 24 --video-kbps 6000 --seconds 10 --sink --no-bwe --json
set -euo pipefail
mode=$1
binary=$2
shift 2
case "$mode" in drop | pass | none) ;; *)
    echo "MODE must be drop, pass or none" >&2
    exit 2
    ;;
esac

cleanup() { tc qdisc del dev lo root 2>/dev/null || true; }
trap cleanup EXIT
cleanup
if [ "$mode" != none ]; then
    tc qdisc add dev lo root handle 1: htb default 1
    tc class add dev lo parent 1: classid 1:1 htb rate 100gbit 2>/dev/null
    tc class add dev lo parent 1: classid 1:2 htb rate 100gbit 2>/dev/null
    tc qdisc add dev lo parent 1:2 handle 20: pfifo limit 0
fi

"$binary" "$@" &
bench=$!
if [ "$mode" = drop ]; then
    port=""
    for _ in $(seq 1 400); do
        sfu=$( (pgrep -f -P "$bench" serve-sfu || pgrep -f serve-sfu) | head -1 || true)
        if [ -n "$sfu" ]; then
            port=$(ss -ulpnH | grep "pid=$sfu," | grep -o '127.0.0.1:[0-9]*' | head -1 | cut -d: -f2 || true)
        fi
        [ -n "$port" ] && break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        echo "the SFU's UDP port was not found; nothing is dropped" >&2
    else
        tc filter add dev lo parent 1: protocol ip prio 1 u32 \
            match ip protocol 17 0xff match ip sport "$port" 0xffff \
            match u8 0x80 0xc0 at 28 flowid 1:2
    fi
fi
wait "$bench"
if [ "$mode" = drop ]; then
    tc -s qdisc show dev lo | grep -A1 "pfifo 20" | grep -o "dropped [0-9]*" |
        sed 's/^/egress-drop: /' >&2 || true
fi
