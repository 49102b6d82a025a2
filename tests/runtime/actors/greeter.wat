;; greeter.wat - a test actor (core-module form) that accepts every channel
;; with a message: handle-channel-open answers accept {true, some("welcome")}
;; and makes the channel id its state. handle-send: 'r' + 36-byte actor id
;; + payload makes a request to that actor (state: the reply or the error
;; text), so a test can hold the greeter busy while it waits for a deferred
;; answer; anything else becomes the state. handle-channel-message makes the
;; message the state.
(module
  (import "theater:simple/message-server-host" "request" (func $request (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 16) "welcome")
  (data (i32.const 24) "none")

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

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $ret (i32.const 24) (i32.const 4)))

  (func (export "theater:simple/message-server-client#handle-send")
        (param i32 i32 i32) (param $mp i32) (param $ml i32) (result i32)
    (if (i32.and (i32.ge_u (local.get $ml) (i32.const 37))
                 (i32.eq (i32.load8_u (local.get $mp)) (i32.const 114))) ;; r
      (then
        ;; result<list<u8>, string> at 256: (ptr, len) at 260 either way
        (call $request (i32.add (local.get $mp) (i32.const 1)) (i32.const 36)
                       (i32.add (local.get $mp) (i32.const 37))
                       (i32.sub (local.get $ml) (i32.const 37)) (i32.const 256))
        (return (call $ret (i32.load (i32.const 260)) (i32.load (i32.const 264))))))
    (call $ret (local.get $mp) (local.get $ml)))

  ;; ok((some(channel id), ({accepted: true, message: some("welcome")})))
  (func (export "theater:simple/message-server-client#handle-channel-open")
        (param i32 i32 i32) (param $cp i32) (param $cl i32) (param i32 i32) (result i32)
    (drop (call $ret (local.get $cp) (local.get $cl)))
    (i32.store8 (i32.const 80) (i32.const 1))
    (i32.store8 (i32.const 84) (i32.const 1))
    (i32.store (i32.const 88) (i32.const 16))
    (i32.store (i32.const 92) (i32.const 7))
    (i32.const 64))

  (func (export "theater:simple/message-server-client#handle-channel-message")
        (param i32 i32 i32) (param i32 i32) (param $mp i32) (param $ml i32) (result i32)
    (call $ret (local.get $mp) (local.get $ml)))

  (func (export "cabi_post_theater:simple/actor#init") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-channel-open") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-channel-message") (param i32) (global.set $bump (i32.const 4096)))
)
