#!/bin/sh
# cli.sh - black-box tests of `theater server` and the commands that talk
# to it: a real server on loopback ports the kernel picks, driven by the
# CLI (every command, text and --json, exit codes), TLS with certificates
# made here by `openssl req` (mutual TLS refusing a client without a
# certificate), a WebSocket client that is not ours (Node's `ws`) cut off
# and resuming without gaps, malformed bytes, and graceful shutdown.
#   sh tests/net/cli.sh BUILD_DIR
BUILD=${1:-build}
T=$(cd "$BUILD" && pwd)/theater
ROOT=$(pwd)
W=$(mktemp -d /tmp/th-net-cli.XXXXXX)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "not ok $1"; }
check() { # check NAME CMD...
	n=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$n"; else bad "$n"; fi
}
expect() { # expect NAME CODE PATTERN CMD...  (pattern on stderr)
	n=$1 code=$2 pat=$3
	shift 3
	"$@" >"$W/out" 2>"$W/err"
	rc=$?
	if [ "$rc" -eq "$code" ] && grep -q -- "$pat" "$W/err"; then
		ok "$n"
	else
		bad "$n (exit $rc: $(head -c 300 "$W/err"))"
	fi
}
# interrupt PID: SIGINT, then the process's exit status. A background job
# starts with SIGINT ignored until it installs its handler, so a signal
# sent too early is lost: after 30 s it is killed (status 137), and the
# check that follows fails rather than the script hanging.
interrupt() {
	kill -INT "$1" 2>/dev/null
	k=0
	while kill -0 "$1" 2>/dev/null && [ $k -lt 300 ]; do
		sleep 0.1
		k=$((k + 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1"
}
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT
[ -n "$KEEP" ] && trap - EXIT

# start_server NAME ARGS... : runs a server, sets ADDR (and WSADDR).
start_server() {
	name=$1
	shift
	"$T" server --home "$W/$name" "$@" >"$W/$name.out" 2>"$W/$name.err" &
	SPID=$!
	PIDS="$PIDS $SPID"
	i=0
	while [ $i -lt 300 ] && ! grep -q '^listening' "$W/$name.out" 2>/dev/null; do
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	ADDR=$(awk '$1 == "listening" && ($2 == "tcp" || $2 == "tls") {print $3; exit}' "$W/$name.out")
	WSADDR=$(awk '$1 == "listening" && ($2 == "ws" || $2 == "wss") {print $3; exit}' "$W/$name.out")
}

# ---- the server's own command line ----
check "server --help" sh -c "'$T' server --help | grep -q -- '--tls-client-ca'"
expect "server: unknown option is a usage error" 2 "unknown option" "$T" server --bogus x
expect "server: plaintext beyond loopback is refused" 1 "refusing plaintext" \
	"$T" server --home "$W/x" --listen 0.0.0.0:0
expect "server: --tls-cert without --tls-key is a usage error" 2 "go together" \
	"$T" server --home "$W/x" --listen 127.0.0.1:0 --tls-cert /nonexistent

start_server main --listen 127.0.0.1:0 --ws-listen 127.0.0.1:0
MAIN=$SPID
check "server prints its addresses" [ -n "$ADDR" ] && [ -n "$WSADDR" ]
A="--address $ADDR"

# ---- store and chain through the server ----
printf 'hello\n' >"$W/small"
h=$("$T" store put "$W/small" $A)
check "store put via the server prints the SHA-256" \
	[ "$h" = "$(sha256sum "$W/small" | cut -d' ' -f1)" ]
check "store get via the server" sh -c "'$T' store get $h $A | cmp -s - '$W/small'"
head -c 3000000 /dev/urandom >"$W/big"
hb=$("$T" store put "$W/big" --label big $A)
check "large put (streamed upload) + label prints a hash" \
	sh -c "echo '$hb' | grep -Eqx '[0-9a-f]{64}'"
check "large get by label (streamed download)" \
	sh -c "'$T' store get --label big $A -o '$W/big2' && cmp -s '$W/big' '$W/big2'"
"$T" store label greeting "$h" $A
check "store ls via the server" sh -c "'$T' store ls $A | grep -qx 'greeting $h'"
check "store ls --json" sh -c "'$T' store ls $A --json | grep -q '\"name\":\"greeting\"'"
"$T" store rm-label greeting $A
check "store rm-label via the server" sh -c "! '$T' store ls $A | grep -q greeting"
sid=$("$T" store new $A)
check "store new via the server" [ -n "$sid" ]
expect "store: unknown hash is an error" 1 "no object" "$T" store get \
	0000000000000000000000000000000000000000000000000000000000000000 $A
check "chain ls via the server" sh -c "'$T' chain ls $A | grep -q '^runtime '"
check "chain verify via the server" sh -c "'$T' chain verify $A | grep -q '^ok'"

# ---- actors (the runtime's counter actor, core-module form) ----
wat2wasm "$ROOT/tests/runtime/actors/counter.wat" -o "$W/counter.wasm"
cat >"$W/counter.toml" <<EOF
name = "counter"
version = "0.1.0"
component = "counter.wasm"

[[handler]]
type = "runtime"

[[handler]]
type = "message-server"
EOF
id=$("$T" start "$W/counter.toml" $A)
check "start prints the actor id" sh -c "echo '$id' | grep -Eq '^[0-9a-f-]{36}$'"
"$T" send "$id" one $A && "$T" send "$id" two $A && "$T" send "$id" three $A
check "request gets the reply (count 3, 8 bytes LE)" \
	sh -c "'$T' request '$id' 'how many' $A | od -An -tu8 | grep -qw 3"
check "state prints the state" sh -c "'$T' state '$id' $A | od -An -tu8 | grep -qw 3"
check "status" sh -c "'$T' status '$id' $A | grep -q 'status: *running'"
check "status --json" sh -c "'$T' status '$id' $A --json | grep -q '\"status\":\"running\"'"
check "list shows the actor" sh -c "'$T' list $A | grep -q '^$id  *counter'"
check "tree shows the actor" sh -c "'$T' tree $A | grep -q '$id counter (running)'"
check "inspect shows state and events" \
	sh -c "'$T' inspect '$id' $A | grep -q 'message.received'"
# init's control message, three sends and one request
check "events lists the actor's events" \
	sh -c "[ \$('$T' events '$id' $A | grep -c message.received) -eq 5 ]"
check "events --type filters" \
	sh -c "[ \$('$T' events '$id' $A --type actor.created | wc -l) -eq 1 ]"
check "events --json is one JSON document" \
	sh -c "'$T' events '$id' $A --json | node -e 'JSON.parse(require(\"fs\").readFileSync(0))'"
check "events --from --limit" \
	sh -c "'$T' events '$id' $A --from 2 --limit 3 | awk '{print \$1}' | tr '\n' ' ' | grep -qx '2 3 4 '"
# --follow: JSON lines as they happen.
"$T" events "$id" $A --follow --json --type message.received >"$W/follow" 2>"$W/follow.err" &
FPID=$!
PIDS="$PIDS $FPID"
"$T" send "$id" four $A
i=0
while [ $i -lt 600 ] && [ "$(grep -c '"message.received"' "$W/follow")" -lt 6 ]; do
	sleep 0.1
	i=$((i + 1))
done
interrupt $FPID
check "events --follow streams new events as JSON lines" \
	sh -c "[ \$(grep -c '\"message.received\"' '$W/follow') -eq 6 ] &&
	       node -e 'for (const l of require(\"fs\").readFileSync(\"$W/follow\",\"utf8\").trim().split(\"\\n\")) JSON.parse(l)'"
check "metrics --json" sh -c "'$T' metrics $A --json | grep -q '\"spawned\":1'"
check "metrics as text" sh -c "'$T' metrics $A | grep -qx 'runtime.spawned 1'"
expect "status of an unknown actor" 1 "no actor" "$T" status 00000000-0000-4000-8000-000000000000 $A
expect "start of a missing manifest" 1 "cannot open" "$T" start "$W/none.toml" $A
expect "send without a message is a usage error" 2 "usage" "$T" send "$id" $A
check "manifest prints the text the actor was started from" \
	sh -c "'$T' manifest '$id' $A | cmp -s - '$W/counter.toml'"
expect "manifest of an unknown actor" 1 "no actor" "$T" manifest 00000000-0000-4000-8000-000000000000 $A
check "restart" sh -c "'$T' restart '$id' $A && '$T' status '$id' $A | grep -q 'status: *running'"
"$T" stop "$id" $A
check "stop" sh -c "'$T' status '$id' $A | grep -q 'status: *stopped'"
expect "a server that is not there" 1 "cannot connect\|Connection refused" \
	"$T" list --address 127.0.0.1:1
check "every remote command has --help" sh -c "
	for c in start stop terminate list status send request events state manifest inspect tree metrics; do
		'$T' \$c --help | grep -q usage || exit 1
	done"
check "completion bash" sh -c "'$T' completion bash | grep -q 'complete -F _theater theater'"
expect "channel close: explained (a channel ends with its connection)" 2 \
	"belongs to the connection" "$T" channel close "$id" $A
expect "channel: usage" 2 "usage" "$T" channel frob "$id" $A

# ---- terminate, start --parent, channels, supervision columns (real actors) ----
# wait_for DESC CMD: until CMD succeeds (no deadline of its own beyond 60 s).
wait_for() {
	d=$1
	shift
	i=0
	while [ $i -lt 600 ] && ! "$@" >/dev/null 2>&1; do
		sleep 0.1
		i=$((i + 1))
	done
	check "$d" "$@"
}
loop=$("$T" start "$W/counter.toml" $A)
"$T" send "$loop" '~' $A # loops forever (no fuel cap)
"$T" send "$loop" more $A
check "terminate an actor stuck in a handler" "$T" terminate "$loop" $A
check "terminated: stopped" sh -c "'$T' status '$loop' $A | grep -q 'status: *stopped'"
check "terminated: recorded as such, the queued message dropped" \
	sh -c "'$T' events '$loop' $A --type actor.stopped | grep -q '\"terminated\"' &&
	       [ \$('$T' events '$loop' $A --type message.dropped | wc -l) -eq 2 ]"
expect "terminate of an unknown actor" 1 "no actor" "$T" terminate 00000000-0000-4000-8000-000000000000 $A
plain=$("$T" start "$W/counter.toml" $A)
expect "channel: an actor without handle-channel-open refuses" 1 "refused" \
	sh -c "echo hi | '$T' channel open '$plain' $A"

wat2wasm "$ROOT/tests/runtime/actors/relay.wat" -o "$W/relay.wasm"
sed -e 's/"counter"/"relay"/' -e 's/counter.wasm/relay.wasm/' "$W/counter.toml" >"$W/relay.toml"
printf '[[handler]]\ntype = "supervisor"\n' >>"$W/relay.toml"
parent=$("$T" start "$W/relay.toml" $A)
child=$("$T" start "$W/counter.toml" --parent "$parent" $A)
check "start --parent prints the child's id" sh -c "echo '$child' | grep -Eq '^[0-9a-f-]{36}$'"
check "start --parent: the child names its parent" \
	sh -c "'$T' status '$child' $A | grep -q 'parent: *$parent'"
check "start --parent: the tree shows the child under its parent" \
	sh -c "'$T' tree $A | grep -A1 '^$parent relay' | grep -q '^  $child counter (running)'"
"$T" send "$child" '!' $A
wait_for "start --parent: the parent's handle-child-error ran" \
	sh -c "'$T' state '$parent' $A | grep -q unreachable"
expect "start --parent of an unknown parent" 1 "no actor" \
	"$T" start "$W/counter.toml" --parent 00000000-0000-4000-8000-000000000000 $A

# A channel both ways: the relay's state is the channel id after the open;
# its 'c' command sends on the channel named by its state; a channel
# message becomes its state; the close makes it "closed".
relay=$("$T" start "$W/relay.toml" $A)
mkfifo "$W/chin"
"$T" channel open "$relay" hello $A <"$W/chin" >"$W/chout" 2>"$W/cherr" &
CPID=$!
PIDS="$PIDS $CPID"
exec 3>"$W/chin"
wait_for "channel open: the actor's handle-channel-open ran" \
	sh -c "'$T' state '$relay' $A | grep -Eqx 'c[0-9]+'"
"$T" send "$relay" "cfrom the actor" $A
wait_for "channel: a message from the actor reaches the client" grep -qx "from the actor" "$W/chout"
echo "from the client" >&3
wait_for "channel: a line from the client reaches the actor" \
	sh -c "'$T' state '$relay' $A | grep -qx 'from the client'"
exec 3>&-
wait $CPID
check "channel: end of input closes it (exit 0)" [ $? -eq 0 ]
wait_for "channel: the actor's handle-channel-close ran" \
	sh -c "'$T' state '$relay' $A | grep -qx closed"
# Closed by the actor: the client hears the reason and exits.
"$T" channel open "$relay" again $A <"$W/chin" >"$W/chout" 2>"$W/cherr" &
CPID=$!
PIDS="$PIDS $CPID"
exec 3>"$W/chin"
wait_for "channel reopened" sh -c "'$T' state '$relay' $A | grep -Eqx 'c[0-9]+'"
"$T" send "$relay" C $A
wait_for "channel: closed by the actor, the client is told why" grep -q "closed by the actor" "$W/cherr"
exec 3>&-
wait $CPID
check "channel: closed by the actor, exit 0" [ $? -eq 0 ]

# Supervision columns: a crasher restarted by its policy ('o' traps in the
# actor's first generation only, so the redelivered message then passes).
wat2wasm "$ROOT/tests/runtime/actors/crasher.wat" -o "$W/crasher.wasm"
sed -e 's/"counter"/"phoenix"/' -e 's/counter.wasm/crasher.wasm/' "$W/counter.toml" >"$W/phoenix.toml"
printf '[supervision]\nrestart = "permanent"\nbackoff_min_ms = 0\n' >>"$W/phoenix.toml"
phx=$("$T" start "$W/phoenix.toml" $A)
check "tree: restarts=0 and the circuit before a failure" \
	sh -c "'$T' tree $A | grep -q '^$phx phoenix (running)  restarts=0  circuit=closed'"
"$T" send "$phx" o $A
wait_for "tree: the restart and the circuit state after a failure" \
	sh -c "'$T' tree $A | grep -q '^$phx phoenix (running)  restarts=1  circuit=closed'"
check "status: restarts and circuit" \
	sh -c "'$T' status '$phx' $A | grep -q 'restarts: *1' && '$T' status '$phx' $A | grep -q 'circuit: *closed'"
check "tree --json: restarts and circuit" \
	sh -c "'$T' tree $A --json | grep -q '\"restarts\":1,\"circuit\":\"closed\"'"

# ---- CLI gaps closed in session 2 (manifest name, --state, --wait, store
# gc/verify/CAS, events arguments, completion, download bar, reconnect) ----
printf 'name = "bad"\nversion = "0.1.0"\ncomponent = "counter.wasm"\nbogus = 3\n' >"$W/bad.toml"
expect "start: a manifest error names the client's file, line and column" 1 "bad.toml:4:" \
	"$T" start "$W/bad.toml" $A
expect "start: --state that is not JSON is refused" 2 "not JSON" \
	"$T" start "$W/counter.toml" --state '{bad json' $A
named=$("$T" start "$W/counter.toml" --state '{"a":1}' $A)
check "start: actor.spawning records the manifest's file" \
	sh -c "'$T' events '$named' $A --type actor.spawning | grep -q 'counter.toml\"'"
expect "events --from -5 is a usage error" 2 "not a number" "$T" events "$named" $A --from -5
check "events --since takes a date like chain show --since" \
	sh -c "'$T' events '$named' $A --since 2020-01-01T00:00:00Z | grep -q actor.spawning"
check "events --since in the future shows nothing" \
	sh -c "[ -z \"\$('$T' events '$named' $A --since 2099-01-01)\" ]"
expect "events --since garbage is a usage error" 2 "not a time" "$T" events "$named" $A --since soon
for sh_ in bash zsh fish; do
	check "completion $sh_ knows terminate and replay" \
		sh -c "'$T' completion $sh_ | grep -q terminate && '$T' completion $sh_ | grep -q replay"
done
check "store gc via the server" sh -c "'$T' store gc $A | grep -q '^gc: [0-9]* objects'"
check "store gc --json via the server" sh -c "'$T' store gc --grace 0 $A --json | grep -q '\"removed\":'"
check "store verify via the server" sh -c "'$T' store verify $A | grep -q '^verify: .* 0 problems'"
check "store verify --json via the server" sh -c "'$T' store verify $A --json | grep -q '\"ok\":true'"
hx=$(printf 'x\n' | "$T" store put - $A)
hy=$(printf 'y\n' | "$T" store put - $A)
"$T" store label cas "$hx" $A
expect "store label --expect with a stale hash fails via the server" 1 "changed" \
	"$T" store label cas "$hy" --expect "$hy" $A
check "store label --expect with the current hash swaps via the server" \
	sh -c "'$T' store label cas '$hy' --expect '$hx' $A && '$T' store ls $A | grep -qx 'cas $hy'"
expect "store label --expect none on an existing label fails" 1 "changed" \
	"$T" store label cas "$hx" --expect none $A
# --wait: a relay whose 'z' sleeps 5 s, with room for one queued message.
sed 's/(i64.const 20) (i32.const 256)/(i64.const 5000) (i32.const 256)/' \
	"$ROOT/tests/runtime/actors/relay.wat" >"$W/sleepy.wat"
wat2wasm "$W/sleepy.wat" -o "$W/sleepy.wasm"
sed -e 's/"counter"/"sleepy"/' -e 's/counter.wasm/sleepy.wasm/' "$W/counter.toml" >"$W/sleepy.toml"
printf '[[handler]]\ntype = "timing"\n\n[limits]\nmailbox_capacity = 1\n' >>"$W/sleepy.toml"
slp=$("$T" start "$W/sleepy.toml" $A)
"$T" send "$slp" z $A
"$T" send "$slp" z $A
expect "send to a full mailbox fails at once without --wait" 1 "full" "$T" send "$slp" lnot-waiting $A
expect "request --wait waits for room (here until its timeout)" 1 "still full after 1000 ms" \
	"$T" request "$slp" q --wait --timeout 1000 $A
check "send --wait waits for room and delivers" "$T" send "$slp" lwaited --wait $A
wait_for "the waited message was handled" \
	sh -c "'$T' events '$slp' $A --type message.received | grep -q lwaited"
check "send --wait --help" sh -c "'$T' send --help | grep -q -- --wait"
check "--help of a remote command lists the connection options" \
	sh -c "'$T' events --help | grep -q -- '--address A' && '$T' list --help | grep -q -- --tls-ca"
expect "channel send is explained, not a bare usage" 2 "belongs to the connection" \
	"$T" channel send "$slp" x $A
check "channel --help says it is interactive" sh -c "'$T' channel --help | grep -q interactive"
# Download progress bar on a terminal (17 MiB, over the 16 MiB threshold).
if command -v script >/dev/null 2>&1; then
	head -c 17825792 /dev/urandom >"$W/huge"
	"$T" store put "$W/huge" --label huge $A >/dev/null
	script -qc "'$T' store get --label huge $A -o '$W/huge2'" /dev/null >"$W/dl.tty" 2>&1
	check "download: a progress bar on a terminal reaches 100%" grep -q "get \[.*100%" "$W/dl.tty"
	check "download: the content arrives" cmp -s "$W/huge" "$W/huge2"
	"$T" store get --label huge $A -o "$W/huge3" 2>"$W/dl.err"
	check "download: no bar when stderr is not a terminal" [ ! -s "$W/dl.err" ]
fi
# events --follow through a TCP proxy that is killed and restarted on the
# same port: the CLI reconnects, resumes its session, no gap, no duplicate.
cat >"$W/proxy.py" <<'PY'
import socket, sys, threading
lp, tp = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", lp))
s.listen(16)
print(s.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = s.accept()
    try:
        u = socket.create_connection(("127.0.0.1", tp))
    except OSError:
        c.close()
        continue
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
PY
start_proxy() { # start_proxy PORT: sets PROXY (pid) and PPORT
	python3 "$W/proxy.py" "$1" "${ADDR##*:}" >"$W/proxy.port" 2>>"$W/proxy.err" &
	PROXY=$!
	PIDS="$PIDS $PROXY"
	i=0
	while [ $i -lt 100 ] && [ ! -s "$W/proxy.port" ]; do sleep 0.1; i=$((i + 1)); done
	PPORT=$(cat "$W/proxy.port")
}
start_proxy 0
fid=$("$T" start "$W/counter.toml" $A)
"$T" events "$fid" --address "127.0.0.1:$PPORT" --follow --json >"$W/rfollow" 2>"$W/rfollow.err" &
RF=$!
PIDS="$PIDS $RF"
"$T" send "$fid" one $A
"$T" send "$fid" two $A
wait_for "follow through the proxy sees the first messages" \
	sh -c "[ \$(grep -c '\"message.received\"' '$W/rfollow') -eq 3 ]"
kill -KILL $PROXY
wait $PROXY 2>/dev/null
"$T" send "$fid" three $A
"$T" send "$fid" four $A
"$T" send "$fid" five $A
start_proxy "$PPORT"
wait_for "follow reconnects and gets the events sent while cut off" \
	sh -c "[ \$(grep -c '\"message.received\"' '$W/rfollow') -eq 6 ]"
check "the follower is still running after the cut" kill -0 $RF
interrupt $RF
check "follow: interrupted after a reconnection, exit 0" [ $? -eq 0 ]
check "follow: sequence numbers 0..N, no gap and no duplicate across the cut" \
	sh -c "sed -n 's/.*\"seq\":\([0-9]*\)[,}].*/\1/p' '$W/rfollow' |
	       awk 'BEGIN{n=0} \$1!=n{exit 1} {n++} END{exit n<10}'"
check "follow --json: history and live lines share one schema" \
	sh -c "! grep -v '^{\"seq\":[0-9]*,\"ts\":[0-9]*,\"type\":\".*,\"hash\":\"[0-9a-f]\{64\}\"}\$' '$W/rfollow'"
kill $PROXY 2>/dev/null

# ---- malformed bytes never hurt the server ----
node -e '
const net = require("net");
let left = 30;
for (let i = 0; i < 30; i++) {
	const s = net.connect(process.argv[1], "127.0.0.1", () => {
		const junk = Buffer.alloc(200 + i * 37);
		for (let j = 0; j < junk.length; j++) junk[j] = (j * 131 + i * 17) & 255;
		if (i % 3 === 0) junk.writeUInt32BE(0x7fffffff, 6);
		s.end(junk);
	});
	s.on("error", () => {});
	s.on("close", () => { if (--left === 0) process.exit(0); });
	s.setTimeout(5000, () => s.destroy());
}' "${ADDR##*:}"
check "the server survives garbage from 30 connections" sh -c "'$T' list $A"

# ---- a WebSocket client that is not ours ----
NPM="$ROOT/build/npm"
if [ ! -d "$NPM/node_modules/ws" ]; then
	npm install --no-save --prefix "$NPM" ws >"$W/npm.log" 2>&1
fi
if [ -d "$NPM/node_modules/ws" ]; then
	if node "$ROOT/tests/net/ws_client.mjs" "ws://$WSADDR/" "$NPM/node_modules" >"$W/ws.log" 2>&1; then
		ok "Node ws client: subscribe, cut off, resume without gap or duplicate"
	else
		bad "Node ws client: $(tail -n 3 "$W/ws.log")"
	fi
else
	bad "Node ws client: cannot install the ws package ($(tail -n 2 "$W/npm.log"))"
fi

# ---- graceful shutdown ----
kill -TERM $MAIN
wait $MAIN
rc=$?
check "SIGTERM: the server exits 0" [ "$rc" -eq 0 ]
check "the chains verify after shutdown" \
	sh -c "THEATER_HOME='$W/main' '$T' chain verify | grep -qi 'ok'"

# ---- TLS and mutual TLS ----
C=$W/certs
mkdir -p "$C"
EC="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
(
	cd "$C" &&
	openssl req -x509 $EC -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca &&
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >srv.ext &&
	printf 'extendedKeyUsage=clientAuth\n' >cli.ext &&
	openssl req $EC -keyout srv.key -out srv.csr -subj /CN=localhost &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile srv.ext -out srv.pem &&
	openssl req $EC -keyout cli.key -out cli.csr -subj /CN=client &&
	openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile cli.ext -out cli.pem
) >"$W/openssl.log" 2>&1
check "openssl made the test certificates" [ -s "$C/cli.pem" ]
start_server tls --listen 127.0.0.1:0 --tls-cert "$C/srv.pem" --tls-key "$C/srv.key" \
	--tls-client-ca "$C/ca.pem"
TLS=$SPID
check "the TLS server announces tls://" sh -c "grep -q '^listening tls ' '$W/tls.out'"
check "mTLS: a client with a certificate from the CA gets in" \
	"$T" list --address "tls://$ADDR" --tls-ca "$C/ca.pem" --tls-cert "$C/cli.pem" \
	--tls-key "$C/cli.key"
expect "mTLS: a client without a certificate is refused" 1 "certificate" \
	"$T" list --address "tls://$ADDR" --tls-ca "$C/ca.pem"
expect "TLS: a client that does not trust the server refuses it" 1 "verify" \
	"$T" list --address "tls://$ADDR" --tls-ca "$C/cli.pem" --tls-cert "$C/cli.pem" \
	--tls-key "$C/cli.key"
interrupt $TLS
check "SIGINT: the TLS server exits 0" [ $? -eq 0 ]

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
