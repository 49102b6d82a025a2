;; node.wat - a ring node for the Savina-style benchmarks (core-module
;; form). State: the id of the next node (36 bytes).
;;   "L" + id          link: the next node is id
;;   "t" + u64 count   token: count 0 ends the run (runtime.shutdown),
;;                     else "t" + (count - 1) goes to the next node
;; A ring of two is PingPong (two hops per round trip); of 100, ThreadRing.
(module
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))
  (import "theater:simple/message-server-host" "send" (func $send (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))

  ;; ok((some(state))) at 64; state at 128 (36 bytes)
  (func $ret (result i32)
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (i32.const 128))
    (i32.store (i32.const 76) (i32.const 36))
    (i32.const 64))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $ret))

  (func (export "theater:simple/message-server-client#handle-send")
        (param $sd i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (local $n i64)
    ;; keep the state (the next node's id) at 128
    (if (i32.and (local.get $sd) (i32.eq (local.get $sl) (i32.const 36)))
      (then (memory.copy (i32.const 128) (local.get $sp) (i32.const 36))))
    (if (i32.eq (i32.load8_u (local.get $mp)) (i32.const 76)) ;; L
      (then (memory.copy (i32.const 128) (i32.add (local.get $mp) (i32.const 1)) (i32.const 36))
            (return (call $ret))))
    (local.set $n (i64.load (i32.add (local.get $mp) (i32.const 1))))
    (if (i64.eqz (local.get $n))
      (then (call $shutdown (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 256))
            (return (call $ret))))
    (i32.store8 (i32.const 192) (i32.const 116))
    (i64.store (i32.const 193) (i64.sub (local.get $n) (i64.const 1)))
    (call $send (i32.const 128) (i32.const 36) (i32.const 192) (i32.const 9) (i32.const 256))
    (call $ret))

  (func (export "cabi_post_theater:simple/actor#init") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))

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
