;; counter.wat - a small actor in core-module form (the world's functions
;; exported under their lowered names), used by the runtime's tests and
;; benchmarks. State: the count as 8 bytes, little-endian.
;;   handle-send: count + 1; a message starting with
;;     '!' traps (unreachable), '~' loops forever (fuel), 'e' returns an
;;     error, 'x' calls runtime.shutdown(some("bye")), 'l' logs.
;;   handle-request: answers the count (8 bytes).
;;   init traps when the initial state starts with '!'.
;; Memory: a bump allocator for cabi_realloc, reset by every post-return.
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32)))
  (import "theater:simple/runtime" "shutdown" (func $shutdown (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 16) "counter started")
  (data (i32.const 32) "bad message")
  (data (i32.const 48) "bye")
  (data (i32.const 52) "log line")

  (func $count (param $disc i32) (param $ptr i32) (param $len i32) (result i64)
    (if (result i64) (i32.and (local.get $disc) (i32.ge_u (local.get $len) (i32.const 8)))
      (then (i64.load (local.get $ptr)))
      (else (i64.const 0))))

  ;; ok((some(count))) in the return area at 64
  (func $ret_state (param $n i64) (result i32)
    (i64.store (i32.const 128) (local.get $n))
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (i32.const 128))
    (i32.store (i32.const 76) (i32.const 8))
    (i32.const 64))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (if (i32.and (local.get 0) (i32.gt_u (local.get 2) (i32.const 0)))
      (then (if (i32.eq (i32.load8_u (local.get 1)) (i32.const 33)) (then unreachable))))
    (call $log (i32.const 16) (i32.const 15))
    (call $ret_state (call $count (local.get 0) (local.get 1) (local.get 2))))

  (func (export "theater:simple/message-server-client#handle-send") (param $sd i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (local $c i32)
    (if (i32.gt_u (local.get $ml) (i32.const 0))
      (then
        (local.set $c (i32.load8_u (local.get $mp)))
        (if (i32.eq (local.get $c) (i32.const 33)) (then unreachable))
        (if (i32.eq (local.get $c) (i32.const 126)) (then (loop $l (br $l))))
        (if (i32.eq (local.get $c) (i32.const 101))
          (then
            (i32.store8 (i32.const 64) (i32.const 1))
            (i32.store (i32.const 68) (i32.const 32))
            (i32.store (i32.const 72) (i32.const 11))
            (return (i32.const 64))))
        (if (i32.eq (local.get $c) (i32.const 120))
          (then (call $shutdown (i32.const 1) (i32.const 48) (i32.const 3) (i32.const 96))))
        (if (i32.eq (local.get $c) (i32.const 108))
          (then (call $log (i32.const 52) (i32.const 8))))))
    (call $ret_state (i64.add (call $count (local.get $sd) (local.get $sp) (local.get $sl)) (i64.const 1))))

  (func (export "theater:simple/message-server-client#handle-request") (param $sd i32) (param $sp i32) (param $sl i32) (param i32 i32 i32 i32) (result i32)
    (local $n i64)
    (local.set $n (call $count (local.get $sd) (local.get $sp) (local.get $sl)))
    (drop (call $ret_state (local.get $n)))
    (i32.store8 (i32.const 80) (i32.const 1))
    (i32.store (i32.const 84) (i32.const 128))
    (i32.store (i32.const 88) (i32.const 8))
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
