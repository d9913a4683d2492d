#!/bin/sh
# sizes.sh TABLE - the footprint of the C port, checked against TABLE.
#
# Run from envelope/c (make sizes runs "sh tools/sizes.sh sizes.txt").
#
# On a Cortex-M4 (arm-none-eabi-gcc -Os -mcpu=cortex-m4 -mthumb), for the
# library's core, src/*.c without src/crypto_mbedtls.c (Mbed TLS for ARM
# is not available here):
#   - code size: text (code and constant data) of all the core's objects,
#     every function counted (before the linker's --gc-sections);
#   - static RAM: data + bss of the same objects;
#   - the worst-case stack of mqttsec_open and of mqttsec_seal in the
#     library's own frames: the deepest path of the call graph GCC writes
#     with -fcallgraph-info=su (frames from -fstack-usage). Calls into the
#     crypto seam (mqttsec_crypto.h) and mqttsec_random count 0 ("plus the
#     crypto backend"), as do libc leaves such as memcpy ("plus libc").
#     Recursion, an indirect call, a frame that is not static, or a call
#     to an unknown function fail the script;
#   - bytes per peer of replay state: sizeof(struct mqttsec_window) and
#     sizeof(struct mqttsec_peer), with struct mqttsec_key, struct
#     mqttsec_pending and struct mqttsec_message for reference (nm -S of an
#     object that defines one of each).
# On the host (x86-64, cc -O2, Debian's Mbed TLS): the measured peak stack
# of one mqttsec_seal and one mqttsec_open of an HMAC and an ES256 message,
# Mbed TLS included (tools/stackmeter.c says how).
#
# Every figure is compared with TABLE ("name value" lines; # comments):
# the script fails, printing old -> new, if one grew past its entry or has
# none. It prints the figures as a markdown table.
set -eu

table=${1:?usage: sizes.sh sizes.txt}
B=build/sizes
ARMCC=${ARMCC:-arm-none-eabi-gcc}
ARMFLAGS="-Os -mcpu=cortex-m4 -mthumb -std=c99 -ffunction-sections -fdata-sections -fstack-usage -fcallgraph-info=su"
HOSTCC=${HOSTCC:-cc}
WARN="-std=c99 -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual -Wvla"

[ -f include/mqttsec.h ] || { echo "sizes.sh: run from envelope/c" >&2; exit 2; }
[ -f "$table" ] || { echo "sizes.sh: no table $table" >&2; exit 2; }

rm -rf "$B"
mkdir -p "$B/arm" "$B/host"

echo "Mbed TLS for ARM is not available here: the Cortex-M4 figures are the"
echo "library's core only (src/*.c but src/crypto_mbedtls.c); calls into the"
echo "crypto seam count 0 bytes of stack, plus the crypto backend."
echo "$ARMCC: $($ARMCC -dumpfullversion 2>/dev/null || $ARMCC -dumpversion)"
echo

# ---- Cortex-M4 ----------------------------------------------------------
core=
for f in src/*.c; do
    [ "$f" = src/crypto_mbedtls.c ] && continue
    core="$core $f"
    o="$B/arm/$(basename "$f" .c).o"
    $ARMCC $ARMFLAGS -Iinclude -Isrc -c "$f" -o "$o"
done
[ -n "$core" ] || { echo "sizes.sh: no core sources in src/" >&2; exit 1; }

# text, data, bss summed over the objects (Berkeley format, -t totals)
set -- $(arm-none-eabi-size -t "$B"/arm/*.o | awk '/TOTALS/ { print $1, $2, $3 }')
m4_text=$1
m4_ram=$(($2 + $3))

# Functions whose address an object takes (R_ARM_ABS32 relocations that
# name a symbol, not a section): the targets of that object's indirect
# calls, such as open.c's table of steps. An object that takes none has
# indirect calls of unknown targets (a hook), which fail the walk.
for o in "$B"/arm/*.o; do
    arm-none-eabi-objdump -r "$o" |
        awk -v src="src/$(basename "$o" .o).c" '$2 == "R_ARM_ABS32" && $3 !~ /^\./ { print "ADDR", src, $3 }'
done > "$B/arm/address-taken.txt"

# stack: the call graph of every object, walked from a root
stack_of() {
    cat "$B/arm/address-taken.txt" "$B"/arm/*.ci | awk -v root="$1" '
    function field(k,    i, s) {
        i = index($0, k ": \"")
        if (i == 0) return ""
        s = substr($0, i + length(k) + 3)
        return substr(s, 1, index(s, "\"") - 1)
    }
    $1 == "ADDR" { na[$2]++; addr[$2, na[$2]] = $3; next }
    /^graph:/ { graph = field("title"); next }
    /^node:/ {
        t = field("title"); l = field("label")
        if (match(l, /[0-9]+ bytes \([a-z,]+\)/)) {
            file[t] = graph
            split(substr(l, RSTART, RLENGTH), a, " ")
            frame[t] = a[1] + 0
            q = a[3]; gsub(/[()]/, "", q); qual[t] = q
        } else if (!(t in decl)) {
            i = index(l, "\\n")
            decl[t] = i ? substr(l, i + 2) : l
        }
        next
    }
    /^edge:/ {
        s = field("sourcename"); ne[s]++; edge[s, ne[s]] = field("targetname")
        next
    }
    function add(list, name) {
        return index(" " list " ", " " name " ") ? list : (list == "" ? name : list " " name)
    }
    # indirect lists in tgt[f, 1..nt[f]] the functions the object of f
    # takes the address of; it returns how many.
    function indirect(f,    g, i, t) {
        if (f in nt) return nt[f]
        g = file[f]; nt[f] = 0
        for (i = 1; i <= na[g]; i++) {
            t = addr[g, i]
            if ((g ":" t) in frame) t = g ":" t
            else if (!(t in frame)) continue
            nt[f]++; tgt[f, nt[f]] = t
            viaptr = add(viaptr, t)
        }
        return nt[f]
    }
    function worst(f,    i, t, w, best, bt) {
        if (f in memo) return memo[f]
        if (onstack[f]) { bad = bad "recursion through " f "; "; return 0 }
        if (!(f in frame)) {
            if (f == "__indirect_call") bad = bad "indirect call; "
            else if (index(decl[f], "mqttsec_crypto.h") || f == "mqttsec_random") backend = add(backend, f)
            else if (f ~ /^(mem|str)[a-z]*$/ || index(decl[f], "newlib")) libc = add(libc, f)
            else bad = bad "unknown function " f " (" decl[f] "); "
            memo[f] = 0
            return 0
        }
        if (qual[f] != "static") bad = bad "frame of " f " is " qual[f] "; "
        onstack[f] = 1; best = 0; bt = ""
        for (i = 1; i <= ne[f]; i++) {
            t = edge[f, i]
            if (t == "__indirect_call") {
                if (indirect(f) == 0) bad = bad "indirect call of unknown target in " f "; "
                continue
            }
            w = worst(t)
            if (bt == "" || w > best) { best = w; bt = t }
        }
        for (i = 1; i <= nt[f]; i++) {
            t = tgt[f, i]; w = worst(t)
            if (bt == "" || w > best) { best = w; bt = t }
        }
        onstack[f] = 0
        nxt[f] = bt
        memo[f] = frame[f] + best
        return memo[f]
    }
    END {
        if (!(root in frame)) { print "ERROR " root " is not defined"; exit }
        n = worst(root)
        path = root; f = root
        while (nxt[f] != "") { f = nxt[f]; path = path " > " f (f in frame ? "(" frame[f] ")" : "") }
        if (bad != "") print "ERROR " bad
        print "STACK " n
        print "PATH " path
        print "BACKEND " backend
        print "LIBC " libc
        print "INDIRECT " viaptr
    }'
}

fail=0
for root in mqttsec_open mqttsec_seal; do
    out=$(stack_of $root)
    if echo "$out" | grep -q '^ERROR'; then
        echo "sizes.sh: $root: $(echo "$out" | sed -n 's/^ERROR //p')" >&2
        fail=1
    fi
    n=$(echo "$out" | sed -n 's/^STACK //p')
    eval "stack_$root=\${n:-0}"
    echo "$root: $n bytes of stack in the library's frames, plus the crypto backend"
    echo "  deepest path: $(echo "$out" | sed -n 's/^PATH //p')"
    echo "  crypto backend (counted 0): $(echo "$out" | sed -n 's/^BACKEND //p')"
    echo "  libc (counted 0): $(echo "$out" | sed -n 's/^LIBC //p')"
    ind=$(echo "$out" | sed -n 's/^INDIRECT //p')
    [ -z "$ind" ] || echo "  called through pointers (the object's address-taken functions): $ind"
done
[ $fail -eq 0 ] || exit 1

# sizes of the structs a device allocates, from an object defining one of each
cat > "$B/arm/structs.c" <<'EOF'
#include "mqttsec.h"
struct mqttsec_window sizes_window;
struct mqttsec_peer sizes_peer;
struct mqttsec_key sizes_key;
struct mqttsec_pending sizes_pending;
struct mqttsec_message sizes_message;
EOF
$ARMCC $ARMFLAGS -fno-common -Iinclude -c "$B/arm/structs.c" -o "$B/arm/structs.obj"
sym_size() {
    arm-none-eabi-nm -S "$B/arm/structs.obj" | awk -v s="$1" '$4 == s { print $2 }'
}
m4_window=$(printf '%d' "0x$(sym_size sizes_window)")
m4_peer=$(printf '%d' "0x$(sym_size sizes_peer)")
m4_key=$(printf '%d' "0x$(sym_size sizes_key)")
m4_pending=$(printf '%d' "0x$(sym_size sizes_pending)")
m4_message=$(printf '%d' "0x$(sym_size sizes_message)")

# ---- Host ------------------------------------------------------------------
echo
echo "host: $HOSTCC $($HOSTCC -dumpfullversion 2>/dev/null || $HOSTCC -dumpversion), -O2, Mbed TLS $(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' /usr/include/mbedtls/version.h 2>/dev/null || echo '?')"
$HOSTCC $WARN -O2 -Iinclude -Ibuild -D_POSIX_C_SOURCE=200809L tools/stackmeter.c src/*.c \
    tests/board_host.c -lmbedcrypto -o "$B/host/stackmeter"
"$B/host/stackmeter" > "$B/host/stack.txt"
host() { awk -v n="$1" '$1 == n { print $2 }' "$B/host/stack.txt"; }

# ---- The figures, checked against the table -------------------------------
cat > "$B/figures.txt" <<EOF
m4_text $m4_text Cortex-M4 code (text: code and constants; core, before --gc-sections)
m4_static_ram $m4_ram Cortex-M4 static RAM (data + bss of the core)
m4_open_stack $stack_mqttsec_open Cortex-M4 worst-case stack of mqttsec_open, library frames (plus the crypto backend)
m4_seal_stack $stack_mqttsec_seal Cortex-M4 worst-case stack of mqttsec_seal, library frames (plus the crypto backend)
m4_window_bytes $m4_window Cortex-M4 sizeof(struct mqttsec_window): replay state per peer (W = 64)
m4_peer_bytes $m4_peer Cortex-M4 sizeof(struct mqttsec_peer), window included
m4_key_bytes $m4_key Cortex-M4 sizeof(struct mqttsec_key), per key held
m4_pending_bytes $m4_pending Cortex-M4 sizeof(struct mqttsec_pending), per request waited for
m4_message_bytes $m4_message Cortex-M4 sizeof(struct mqttsec_message), the caller's, per open
host_open_hmac_stack $(host host_open_hmac_stack) host peak stack, mqttsec_open of an HMAC message, Mbed TLS included
host_seal_hmac_stack $(host host_seal_hmac_stack) host peak stack, mqttsec_seal of an HMAC message, Mbed TLS included
host_open_es256_stack $(host host_open_es256_stack) host peak stack, mqttsec_open of an ES256 message, Mbed TLS included
host_seal_es256_stack $(host host_seal_es256_stack) host peak stack, mqttsec_seal of an ES256 message, Mbed TLS included
EOF

echo
echo "| figure | bytes |"
echo "|---|---:|"
awk '{ v = $2; $1 = ""; $2 = ""; sub(/^  /, ""); print "| " $0 " | " v " |" }' "$B/figures.txt"
echo

awk '
    NR == FNR { if ($0 !~ /^[ \t]*(#|$)/) old[$1] = $2; next }
    {
        if ($2 == "") { printf "%s: not measured\n", $1; bad = 1; next }
        if (!($1 in old)) { printf "%s: not in the table (new %s)\n", $1, $2; bad = 1; next }
        if ($2 + 0 > old[$1] + 0) { printf "%s grew: %s -> %s\n", $1, old[$1], $2; bad = 1 }
        else if ($2 + 0 < old[$1] + 0) printf "%s shrank: %s -> %s (update the table)\n", $1, old[$1], $2
    }
    END { exit bad }' "$table" "$B/figures.txt" || {
    echo "sizes.sh: figures grew past $table" >&2
    exit 1
}
echo "sizes.sh: every figure within $table"
