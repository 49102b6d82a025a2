;; relay.wat - a test actor (core-module form) that exercises the host
;; interfaces. handle-send reads one command per message:
;;   byte 0     the operation
;;   bytes 1-36 a target actor id (for s, r)
;;   the rest   the payload
;; and makes the result its state (the payload of an ok, the text of an
;; error, "none" for an absent option), so a test reads it back with
;; thr_get_state:
;;   s  message-server-host.send(target, payload)        -> "ok" | error
;;   r  message-server-host.request(target, payload)     -> reply | error
;;   z  timing.sleep(20)                                 -> "ok" | error
;;   n  timing.now()                                     -> 8 bytes
;;   b  random.random-bytes(16)                          -> bytes | error
;;   B  random.random-bytes(2^30)                        -> bytes | error
;;   v  environment.get-var(payload)                     -> value | "none"
;;   w  filesystem.write-file(payload, "hello")          -> "ok" | error
;;   f  filesystem.read-file(payload)                    -> content | error
;;   S  supervisor.spawn(payload as manifest text, none) -> child id | error
;;   R  respond-to-request(state as request id, payload) -> "ok" | error
;;   l  runtime.log(payload)                             -> "ok"
;;   o  open-channel(target, payload)                    -> channel id | error
;;   c  send-on-channel(state as channel id, payload)    -> "ok" | error
;;   C  close-channel(state as channel id)               -> "ok" | error
;;   L  list-outstanding-requests()                      -> first id | "none"
;;   X  cancel-request(state as request id)              -> "ok" | error
;;   K  supervisor.stop-child(payload)                   -> "ok" | error
;;   G  supervisor.get-child-state(payload)              -> state | "none" | error
;;   T  supervisor.restart-child(payload)                -> "ok" | error
;; handle-request answers later: its state becomes the request id and its
;; response none (a later R answers it). handle-channel-open accepts (state:
;; the channel id), handle-channel-message makes the message the state,
;; handle-channel-close makes it "closed". handle-child-error makes the
;; error's data the state, handle-child-exit "exit", handle-child-external-stop
;; "stopped".
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32)))
  (import "theater:simple/message-server-host" "send" (func $send (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "request" (func $request (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "respond-to-request" (func $respond (param i32 i32 i32 i32 i32)))
  (import "theater:simple/timing" "sleep" (func $sleep (param i64 i32)))
  (import "theater:simple/timing" "now" (func $now (result i64)))
  (import "theater:simple/random" "random-bytes" (func $rbytes (param i32 i32)))
  (import "theater:simple/environment" "get-var" (func $getvar (param i32 i32 i32)))
  (import "theater:simple/filesystem" "write-file" (func $wfile (param i32 i32 i32 i32 i32)))
  (import "theater:simple/filesystem" "read-file" (func $rfile (param i32 i32 i32)))
  (import "theater:simple/supervisor" "spawn" (func $spawn (param i32 i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "open-channel" (func $open (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "send-on-channel" (func $chsend (param i32 i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "close-channel" (func $chclose (param i32 i32 i32)))
  (import "theater:simple/message-server-host" "list-outstanding-requests" (func $outstanding (param i32)))
  (import "theater:simple/message-server-host" "cancel-request" (func $cancel (param i32 i32 i32)))
  (import "theater:simple/supervisor" "stop-child" (func $stopchild (param i32 i32 i32)))
  (import "theater:simple/supervisor" "get-child-state" (func $childstate (param i32 i32 i32)))
  (import "theater:simple/supervisor" "restart-child" (func $restartchild (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 16) "ok")
  (data (i32.const 24) "none")
  (data (i32.const 32) "hello")
  (data (i32.const 40) "closed")
  (data (i32.const 48) "exit")
  (data (i32.const 56) "stopped")

  (func (export "cabi_realloc") (param $old i32) (param $osz i32) (param $al i32) (param $nsz i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $al) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $al))))
    (global.set $bump (i32.add (local.get $p) (local.get $nsz)))
    (local.set $need (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $need) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (local.get $p))

  ;; ok((some(bytes ptr len))) in the return area at 64
  (func $ret (param $p i32) (param $n i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (local.get $p))
    (i32.store (i32.const 76) (local.get $n))
    (i32.const 64))

  ;; The state from a result/option written by an import at 256:
  ;; case byte at 256, (ptr, len) at 260. none_case: the case that has no
  ;; payload (-1: none has one).
  (func $from (param $ok_empty i32) (result i32)
    (if (result i32) (i32.and (i32.eqz (i32.load8_u (i32.const 256))) (local.get $ok_empty))
      (then (call $ret (i32.const 16) (i32.const 2)))
      (else (call $ret (i32.load (i32.const 260)) (i32.load (i32.const 264))))))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $ret (i32.const 24) (i32.const 4)))

  (func (export "theater:simple/message-server-client#handle-send")
        (param $sd i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (local $op i32) (local $tp i32) (local $pp i32) (local $pl i32)
    (if (i32.eqz (local.get $ml)) (then (return (call $ret (i32.const 24) (i32.const 4)))))
    (local.set $op (i32.load8_u (local.get $mp)))
    (local.set $tp (i32.add (local.get $mp) (i32.const 1)))
    ;; payload after the target id (for s, r) or right after the op
    (if (i32.or (i32.or (i32.eq (local.get $op) (i32.const 115)) (i32.eq (local.get $op) (i32.const 114)))
                (i32.eq (local.get $op) (i32.const 111)))
      (then (local.set $pp (i32.add (local.get $mp) (i32.const 37)))
            (local.set $pl (i32.sub (local.get $ml) (i32.const 37))))
      (else (local.set $pp (i32.add (local.get $mp) (i32.const 1)))
            (local.set $pl (i32.sub (local.get $ml) (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 115)) ;; s
      (then (call $send (local.get $tp) (i32.const 36) (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 114)) ;; r
      (then (call $request (local.get $tp) (i32.const 36) (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 122)) ;; z
      (then (call $sleep (i64.const 20) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 110)) ;; n
      (then (i64.store (i32.const 1024) (call $now))
            (return (call $ret (i32.const 1024) (i32.const 8)))))
    (if (i32.eq (local.get $op) (i32.const 98)) ;; b
      (then (call $rbytes (i32.const 16) (i32.const 256))
            (return (call $from (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 66)) ;; B
      (then (call $rbytes (i32.const 1073741824) (i32.const 256))
            (return (call $from (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 118)) ;; v: option<string>
      (then (call $getvar (local.get $pp) (local.get $pl) (i32.const 256))
            (if (i32.eqz (i32.load8_u (i32.const 256)))
              (then (return (call $ret (i32.const 24) (i32.const 4)))))
            (return (call $ret (i32.load (i32.const 260)) (i32.load (i32.const 264))))))
    (if (i32.eq (local.get $op) (i32.const 119)) ;; w
      (then (call $wfile (local.get $pp) (local.get $pl) (i32.const 32) (i32.const 5) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 102)) ;; f
      (then (call $rfile (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 83)) ;; S
      (then (call $spawn (local.get $pp) (local.get $pl) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 256))
            (return (call $from (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 82)) ;; R: request id is the state
      (then (call $respond (local.get $sp) (local.get $sl) (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 108)) ;; l
      (then (call $log (local.get $pp) (local.get $pl))
            (return (call $ret (i32.const 16) (i32.const 2)))))
    (if (i32.eq (local.get $op) (i32.const 111)) ;; o
      (then (call $open (local.get $tp) (i32.const 36) (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 99)) ;; c
      (then (call $chsend (local.get $sp) (local.get $sl) (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 67)) ;; C
      (then (call $chclose (local.get $sp) (local.get $sl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 76)) ;; L: list<string> at 256 (ptr, len)
      (then (call $outstanding (i32.const 256))
            (if (i32.eqz (i32.load (i32.const 260)))
              (then (return (call $ret (i32.const 24) (i32.const 4)))))
            (return (call $ret (i32.load (i32.load (i32.const 256)))
                               (i32.load (i32.add (i32.load (i32.const 256)) (i32.const 4)))))))
    (if (i32.eq (local.get $op) (i32.const 88)) ;; X
      (then (call $cancel (local.get $sp) (local.get $sl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 75)) ;; K
      (then (call $stopchild (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 84)) ;; T
      (then (call $restartchild (local.get $pp) (local.get $pl) (i32.const 256))
            (return (call $from (i32.const 1)))))
    (if (i32.eq (local.get $op) (i32.const 71)) ;; G: result<option<list<u8>>, string>
      (then (call $childstate (local.get $pp) (local.get $pl) (i32.const 256))
            (if (i32.load8_u (i32.const 256))
              (then (return (call $ret (i32.load (i32.const 260)) (i32.load (i32.const 264))))))
            (if (i32.eqz (i32.load8_u (i32.const 260)))
              (then (return (call $ret (i32.const 24) (i32.const 4)))))
            (return (call $ret (i32.load (i32.const 264)) (i32.load (i32.const 268))))))
    unreachable)

  ;; Accept every channel: state = its id; accept {true, none}.
  (func (export "theater:simple/message-server-client#handle-channel-open")
        (param i32 i32 i32) (param $cp i32) (param $cl i32) (param i32 i32) (result i32)
    (drop (call $ret (local.get $cp) (local.get $cl)))
    (i32.store8 (i32.const 80) (i32.const 1))
    (i32.store8 (i32.const 84) (i32.const 0))
    (i32.const 64))

  (func (export "theater:simple/message-server-client#handle-channel-message")
        (param i32 i32 i32) (param i32 i32) (param $mp i32) (param $ml i32) (result i32)
    (call $ret (local.get $mp) (local.get $ml)))

  (func (export "theater:simple/message-server-client#handle-channel-close")
        (param i32 i32 i32) (param i32 i32) (result i32)
    (call $ret (i32.const 40) (i32.const 6)))

  ;; (state, (child-id, {error-type, data: option<list<u8>>}))
  (func (export "theater:simple/supervisor-handlers#handle-child-error")
        (param i32 i32 i32) (param i32 i32) (param i32) (param $dd i32) (param $dp i32) (param $dl i32) (result i32)
    (if (result i32) (local.get $dd)
      (then (call $ret (local.get $dp) (local.get $dl)))
      (else (call $ret (i32.const 24) (i32.const 4)))))

  (func (export "theater:simple/supervisor-handlers#handle-child-exit")
        (param i32 i32 i32) (param i32 i32) (param i32 i32 i32) (result i32)
    (call $ret (i32.const 48) (i32.const 4)))

  (func (export "theater:simple/supervisor-handlers#handle-child-external-stop")
        (param i32 i32 i32) (param i32 i32) (result i32)
    (call $ret (i32.const 56) (i32.const 7)))

  ;; Defer the answer: state = the request id, response none.
  (func (export "theater:simple/message-server-client#handle-request")
        (param i32 i32 i32) (param $rp i32) (param $rl i32) (param i32 i32) (result i32)
    (drop (call $ret (local.get $rp) (local.get $rl)))
    (i32.store8 (i32.const 80) (i32.const 0))
    (i32.const 64))

  (func (export "cabi_post_theater:simple/actor#init") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-request") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-channel-open") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-channel-message") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-channel-close") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/supervisor-handlers#handle-child-error") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/supervisor-handlers#handle-child-exit") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/supervisor-handlers#handle-child-external-stop") (param i32) (global.set $bump (i32.const 4096)))
)
