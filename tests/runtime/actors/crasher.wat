;; crasher.wat - a test actor (core-module form) that fails on demand, for
;; the supervision tests and benchmark. State: 16 bytes, little-endian:
;; the count of ordinary messages (i64) and the generation (i64: how many
;; times init ran on this state, so a restart from the preserved state
;; shows gen 2, a reset one gen 1).
;;   handle-send, by the first byte of the message:
;;     '!' traps (unreachable)           'o' traps only in generation 1
;;     'e' returns an error              '~' loops forever (fuel)
;;     'm' grows memory until refused, then traps (memory bomb)
;;     'R' recurses without end (stack)  'x' runtime.shutdown(some("bye"))
;;     'z' timing.sleep(10 minutes)      anything else: count + 1
;;   handle-request: 'r' + 36-byte actor id + payload makes a request to
;;     that actor with the payload and answers its reply (or the error
;;     text); anything else is answered with the state (16 bytes).
(module
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "request" (func $request (param i32 i32 i32 i32 i32)))
  (import "theater:simple/timing" "sleep" (func $sleep (param i64 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 16) "handler error")
  (data (i32.const 48) "bye")

  (func $ld (param $disc i32) (param $ptr i32) (param $len i32) (param $off i32) (result i64)
    (if (result i64) (i32.and (local.get $disc) (i32.ge_u (local.get $len) (i32.const 16)))
      (then (i64.load (i32.add (local.get $ptr) (local.get $off))))
      (else (i64.const 0))))

  ;; ok((some(state))) in the return area at 64; state at 128
  (func $ret_state (param $count i64) (param $gen i64) (result i32)
    (i64.store (i32.const 128) (local.get $count))
    (i64.store (i32.const 136) (local.get $gen))
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (i32.const 128))
    (i32.store (i32.const 76) (i32.const 16))
    (i32.const 64))

  (func $rec (param $n i32) (result i32)
    (i32.add (call $rec (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))

  (func (export "theater:simple/actor#init") (param $sd i32) (param $sp i32) (param $sl i32) (param i32 i32) (result i32)
    (call $ret_state (call $ld (local.get $sd) (local.get $sp) (local.get $sl) (i32.const 0))
                     (i64.add (call $ld (local.get $sd) (local.get $sp) (local.get $sl) (i32.const 8)) (i64.const 1))))

  (func (export "theater:simple/message-server-client#handle-send") (param $sd i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (local $c i32) (local $count i64) (local $gen i64)
    (local.set $count (call $ld (local.get $sd) (local.get $sp) (local.get $sl) (i32.const 0)))
    (local.set $gen (call $ld (local.get $sd) (local.get $sp) (local.get $sl) (i32.const 8)))
    (if (i32.gt_u (local.get $ml) (i32.const 0))
      (then
        (local.set $c (i32.load8_u (local.get $mp)))
        (if (i32.eq (local.get $c) (i32.const 33)) (then unreachable))
        (if (i32.and (i32.eq (local.get $c) (i32.const 111)) (i64.eq (local.get $gen) (i64.const 1))) (then unreachable))
        (if (i32.eq (local.get $c) (i32.const 126)) (then (loop $l (br $l))))
        (if (i32.eq (local.get $c) (i32.const 109))
          (then (loop $g
                  (if (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0)) (then unreachable))
                  (br $g))))
        (if (i32.eq (local.get $c) (i32.const 82)) (then (drop (call $rec (i32.const 0)))))
        (if (i32.eq (local.get $c) (i32.const 101))
          (then
            (i32.store8 (i32.const 64) (i32.const 1))
            (i32.store (i32.const 68) (i32.const 16))
            (i32.store (i32.const 72) (i32.const 13))
            (return (i32.const 64))))
        (if (i32.eq (local.get $c) (i32.const 120))
          (then (call $shutdown (i32.const 1) (i32.const 48) (i32.const 3) (i32.const 96))
                (return (call $ret_state (local.get $count) (local.get $gen)))))
        (if (i32.eq (local.get $c) (i32.const 122))
          (then (call $sleep (i64.const 600000) (i32.const 256))
                (return (call $ret_state (local.get $count) (local.get $gen)))))))
    (call $ret_state (i64.add (local.get $count) (i64.const 1)) (local.get $gen)))

  (func (export "theater:simple/message-server-client#handle-request") (param $sd i32) (param $sp i32) (param $sl i32) (param i32 i32) (param $mp i32) (param $ml i32) (result i32)
    (drop (call $ret_state (call $ld (local.get $sd) (local.get $sp) (local.get $sl) (i32.const 0))
                           (call $ld (local.get $sd) (local.get $sp) (local.get $sl) (i32.const 8))))
    (i32.store8 (i32.const 80) (i32.const 1))
    (if (i32.and (i32.ge_u (local.get $ml) (i32.const 37)) (i32.eq (i32.load8_u (local.get $mp)) (i32.const 114)))
      (then
        (call $request (i32.add (local.get $mp) (i32.const 1)) (i32.const 36)
                       (i32.add (local.get $mp) (i32.const 37)) (i32.sub (local.get $ml) (i32.const 37))
                       (i32.const 256))
        (i32.store (i32.const 84) (i32.load (i32.const 260)))
        (i32.store (i32.const 88) (i32.load (i32.const 264)))
        (return (i32.const 64))))
    (i32.store (i32.const 84) (i32.const 128))
    (i32.store (i32.const 88) (i32.const 16))
    (i32.const 64))

  (func (export "cabi_post_theater:simple/actor#init") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-request") (param i32) (global.set $bump (i32.const 4096)))

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
)
