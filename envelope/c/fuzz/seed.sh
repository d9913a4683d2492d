#!/bin/sh
# seed.sh VECTORS CORPUS - seeds the libFuzzer corpus of fuzz/open_fuzz.c.
#
# VECTORS is build/vectors.txt (tools/vecflat's flattening of
# ../testdata/vectors). Each vector's envelope is written, as bytes, to
# CORPUS/vector-NAME, and the pending request of a reply vector to
# CORPUS/request-NAME. Existing files of those names are replaced; what
# the fuzzer added to CORPUS stays. Hex is decoded with xxd, or with perl
# where xxd is missing.
set -eu

vectors=${1:?usage: seed.sh build/vectors.txt build/fuzz-corpus}
corpus=${2:?usage: seed.sh build/vectors.txt build/fuzz-corpus}

if command -v xxd >/dev/null 2>&1; then
    unhex() { xxd -r -p; }
elif command -v perl >/dev/null 2>&1; then
    unhex() { perl -e 'local $/; my $h = <STDIN>; $h =~ s/\s+//g; binmode STDOUT; print pack("H*", $h);'; }
else
    echo "seed.sh: needs xxd or perl" >&2
    exit 1
fi

mkdir -p "$corpus"
name=
n=0
while IFS=' ' read -r key val; do
    case $key in
    vector)
        name=${val%.json}
        ;;
    envelope | request)
        [ -n "$name" ] || { echo "seed.sh: $key before any vector" >&2; exit 1; }
        case $val in
        *[!0-9a-f]*) echo "seed.sh: $name: $key is not hex" >&2; exit 1 ;;
        esac
        printf '%s' "$val" | unhex > "$corpus/$key-$name"
        n=$((n + 1))
        ;;
    esac
done < "$vectors"
[ "$n" -gt 0 ] || { echo "seed.sh: no envelopes in $vectors" >&2; exit 1; }
echo "seed.sh: $n envelopes written to $corpus"
