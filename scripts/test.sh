#!/usr/bin/env bash
# Runs the whole test suite: unit, property, conformance, talk-off,
# differential (spandsp), CLI and zero-allocation tests.
#
# Some tests need Debian packages: libspandsp-dev + pkg-config (reference
# detector), espeak-ng (speech for talk-off and over-masking), sox (G.711
# cross-check and resampling), multimon-ng and dtmf2num (decoders the masked
# audio must defeat), sip-tester (RTP captures with telephone-events; sipp
# for the relay test), tshark (checks scrubbed captures; editcap and mergecap
# make the pcapng ones), GNU time (peak memory of the streaming tests),
# kamailio, rtpengine-daemon and rtpengine-utils (the ng relay driven by a real
# Kamailio, compared with rtpengine, and spoken to by rtpengine-ng-client),
# postgresql (the shared vault store: this script starts a
# throwaway server on loopback unless CARDVEIL_TEST_POSTGRES names one). Run as
# root, this script installs whichever are missing; otherwise those tests print
# SKIPPED (and fail under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v multimon-ng >/dev/null || need+=(multimon-ng)
command -v dtmf2num >/dev/null || need+=(dtmf2num)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists spandsp 2>/dev/null || need+=(libspandsp-dev)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[[ -e /usr/share/sip-tester/dtmf_2833_0.pcap ]] || need+=(sip-tester)
command -v tshark >/dev/null || need+=(tshark)
[[ -x /usr/bin/time ]] || need+=(time)
command -v kamailio >/dev/null || need+=(kamailio)
command -v rtpengine >/dev/null || need+=(rtpengine-daemon)
command -v rtpengine-ng-client >/dev/null || need+=(rtpengine-utils)
if ((${#need[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing test tools: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "note: missing ${need[*]} (apt-get install ${need[*]}); the tests that need them will be skipped" >&2
    fi
fi

if [[ -z ${CARDVEIL_TEST_POSTGRES:-} ]] && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    pgdir=$(mktemp)
    CARDVEIL_TEST_POSTGRES=$(scripts/postgres.sh 2>"$pgdir")
    export CARDVEIL_TEST_POSTGRES
    pgdir=$(sed -n 's/^postgres: //p' "$pgdir")
    trap 'scripts/postgres.sh stop "$pgdir"' EXIT
fi

cargo test --workspace "$@"
